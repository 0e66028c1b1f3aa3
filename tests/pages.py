"""Look at every page of the built site in headless Chromium, several pages at a time.

One load per page and width (a laptop's 1280 px and a phone's 390 px), looked at in each
theme (switched as the page's own button does), records everything the page tests check
(``Look``): title, console errors, requests that left 127.0.0.1, figures with their alt
text, size and (at the laptop width) the luminance of their paper and ink, the Colab link,
code and outputs that scroll sideways, display equations wider than their box, and the
colours of the explorers and progress bars. Pages load concurrently (Playwright's async
API, in a thread of its own so it never meets the event loop of the synchronous API the
interactive tests use): most of a visit is waiting for the page to go quiet, not computing.
"""

from __future__ import annotations

import asyncio
import io
import os
import threading
from dataclasses import dataclass
from urllib.parse import urlparse

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
VIEWPORT = {"width": 1280, "height": 800}  # a common laptop screen
PHONE = {"width": 390, "height": 844}  # a common phone, in CSS pixels
WIDTHS = {"desktop": VIEWPORT, "phone": PHONE}
FIGURES = "div.cell_output img[src*='_images/']"
CONCURRENT = 3


def is_local(url: str) -> bool:
    parsed = urlparse(url)
    return parsed.scheme in {"data", "blob", "about"} or parsed.hostname == "127.0.0.1"


@dataclass
class Look:
    """What one visit of a page in one theme found."""

    ok: bool
    theme: str  # as the page applied it
    width: int  # the window's width in CSS pixels
    title: str
    heading: str
    broken_images: list[str]
    errors: list[str]
    outside_requests: list[str]
    colab_links: list[str]
    downloads: int
    figures: list[dict]  # src, alt, width and natural width (px), padding; paper and ink
    # luminance (laptop width only)
    page_scrolls: bool  # the whole page is wider than the window
    scrolling: list[dict]  # code, outputs wider than their box: where, scroll and client width
    math: list[dict]  # display equations: content and box width, right edges
    colours: list[dict]  # explorers, progress bars: selector, text and background colours
    chips: list[float]  # the contrast of each numbered sample of the batch explorer
    page_colours: dict  # the theme's own text and background colours (computed)


_FIGURES_JS = """els => els.map(e => {
    const s = getComputedStyle(e);
    const pad = parseFloat(s.paddingLeft) + parseFloat(s.paddingRight);
    return {src: e.getAttribute('src'), alt: e.getAttribute('alt'), width: e.clientWidth - pad,
            natural: e.naturalWidth, padding: parseFloat(s.paddingLeft)};
})"""
# Boxes that would make a reader scroll sideways: code, text outputs, HTML outputs.
SCROLLERS = ("div.cell_input pre, div.cell_output pre, div.cell_output .output,"
             " div.cell_output .text_html")  # fmt: skip
_SCROLLING_JS = """els => els.filter(e => e.scrollWidth > e.clientWidth + 1).map(e => ({
    where: e.closest('.cell_input') ? 'input' : 'output', scroll: e.scrollWidth,
    client: e.clientWidth, text: (e.innerText || '').split('\\n')[0].slice(0, 80)}))"""
_PAGE_SCROLLS_JS = "() => document.documentElement.scrollWidth > window.innerWidth + 1"
# Display equations, once MathJax has typeset them: their width against their box's.
_MATH_JS = """async () => {
    if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
        await MathJax.startup.promise;
    }
    const article = document.querySelector('main article') || document.body;
    const right = article.getBoundingClientRect().right;
    return Array.from(document.querySelectorAll('div.math')).map(m => {
        const e = m.querySelector('mjx-container') || m;
        return {tex: m.textContent.trim().slice(0, 60), scroll: e.scrollWidth,
                client: e.clientWidth, right: m.getBoundingClientRect().right,
                article: right};
    });
}"""
# The colours an explorer or a progress bar shows its text on (the first opaque background).
_COLOURS_JS = """sel => Array.from(document.querySelectorAll(sel)).map(e => {
    let b = e, bg = 'rgba(0, 0, 0, 0)';
    while (b && (bg = getComputedStyle(b).backgroundColor).match(/rgba\\(.*, 0\\)$/)) {
        b = b.parentElement;
    }
    return {selector: sel, text: getComputedStyle(e).color, background: bg};
})"""
# The theme's own colours, computed by the browser as the outputs would get them.
_PAGE_COLOURS_JS = """() => {
    const probe = document.createElement('div');
    probe.style.cssText = 'color: var(--pst-color-text-base);'
        + ' background-color: var(--pst-color-background)';
    document.body.appendChild(probe);
    const s = getComputedStyle(probe), found = {text: s.color, background: s.backgroundColor};
    probe.remove();
    return found;
}"""
COLOURED = (".tll-explorer", ".tll-valley", ".cell_output .widget-subarea")
_CHIPS_JS = """els => els.map(e => [getComputedStyle(e).color, getComputedStyle(e).backgroundColor,
                                   getComputedStyle(e).opacity])"""
_BROKEN_JS = (
    "Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)"
)


def luminance(rgb):
    """WCAG relative luminance of an (..., 3) array of 0-255 sRGB values."""
    import numpy as np

    c = np.asarray(rgb, dtype=float) / 255
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return linear @ [0.2126, 0.7152, 0.0722]


def css_rgb(colour: str) -> tuple[float, float, float]:
    """The red, green and blue of a computed CSS colour ("rgb(20, 24, 30)")."""
    parts = colour[colour.index("(") + 1 : colour.index(")")].replace(",", " ").split()
    return tuple(float(p) for p in parts[:3])


def contrast(a: str, b: str) -> float:
    """WCAG contrast ratio of two computed CSS colours."""
    light, dark = sorted((float(luminance(css_rgb(a))), float(luminance(css_rgb(b)))))[::-1]
    return (light + 0.05) / (dark + 0.05)


def paper_and_ink(shot: bytes, padding: float) -> dict[str, float]:
    """The luminance of a figure's margins (its paper) and of its darkest pixel (its ink)."""
    import numpy as np
    from PIL import Image

    image = Image.open(io.BytesIO(shot)).convert("RGB")
    pad = round(padding)  # the dark theme frames images with a padding
    w, h = image.size
    lum = luminance(image.crop((pad, pad, w - pad, h - pad)))  # (H, W)
    paper = float(np.median(np.concatenate([lum[1], lum[-2]])))  # the margins
    return {"paper": paper, "ink": float(lum.min())}


async def _abort(route) -> None:
    await route.abort()


async def _settle(url: str, pending: set[str], quiet: float = 0.5, limit: float = 20.0) -> None:
    """Wait until the page has requested nothing for ``quiet`` seconds (scripts that load
    more scripts, widget state, fonts). Playwright's own "networkidle" also counts
    connections the page never asked for, and once in a while waited forever for one."""
    loop = asyncio.get_running_loop()
    deadline, quiet_since = loop.time() + limit, loop.time()
    while loop.time() - quiet_since < quiet:
        if loop.time() > deadline:
            raise AssertionError(f"{url}: still loading after {limit} s: {sorted(pending)}")
        await asyncio.sleep(0.05)
        if pending:
            quiet_since = loop.time()


async def _set_theme(page, theme: str) -> str:
    """Switch the page's theme as its light/dark button does; return the theme it shows."""
    return await page.evaluate(
        """theme => {
            localStorage.setItem('mode', theme);
            document.documentElement.dataset.mode = theme;
            document.documentElement.dataset.theme = theme;
            return new Promise(done => requestAnimationFrame(() => requestAnimationFrame(
                () => done(document.documentElement.dataset.theme))));
        }""",
        theme,
    )


async def _figures(page, pixels: bool) -> list[dict]:
    figures = await page.eval_on_selector_all(FIGURES, _FIGURES_JS)
    for i, fig in enumerate(figures if pixels else []):
        shot = await page.locator(FIGURES).nth(i).screenshot()
        fig.update(paper_and_ink(shot, fig["padding"]))
    return figures


async def _colours(page) -> list[dict]:
    found = []
    for selector in COLOURED:
        found += await page.evaluate(_COLOURS_JS, selector)
    return found


async def _visit(browser, url: str, themes: list[str], viewport: dict) -> dict[str, Look]:
    """Load ``url`` once (in the first theme) at ``viewport``, then look at it in each theme."""
    context = await browser.new_context(viewport=viewport)
    # the site's light/dark switch stores its choice here
    await context.add_init_script(f"localStorage.setItem('mode', '{themes[0]}')")
    page = await context.new_page()
    requests: list[str] = []
    errors: list[str] = []
    pending: set[str] = set()
    page.on("request", lambda r: (requests.append(r.url), pending.add(r.url)))
    page.on("requestfinished", lambda r: pending.discard(r.url))
    page.on("requestfailed", lambda r: pending.discard(r.url))
    page.on("console", lambda m: errors.append(f"console: {m.text}") if m.type == "error" else 0)
    page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
    await page.route(lambda u: not is_local(u), _abort)  # offline: nothing leaves 127.0.0.1
    try:
        response = await page.goto(url, wait_until="load")
        await _settle(url, pending)
        colab = "a[href^='https://colab.research.google.com']"
        common = {
            "ok": response is not None and response.ok,
            "title": await page.title(),
            "heading": (await page.locator("main h1").first.inner_text()).strip(),
            "broken_images": await page.evaluate(_BROKEN_JS),
            "outside_requests": [u for u in requests if not is_local(u)],
            "colab_links": await page.eval_on_selector_all(colab, "els => els.map(e => e.href)"),
            "downloads": await page.locator("a[href$='.ipynb'], button[onclick*='.ipynb']").count(),
        }
        looks = {}
        for theme in themes:
            shown = await _set_theme(page, theme)
            looks[theme] = Look(
                theme=shown,
                width=viewport["width"],
                errors=list(errors),
                figures=await _figures(page, pixels=viewport is VIEWPORT),
                page_scrolls=await page.evaluate(_PAGE_SCROLLS_JS),
                scrolling=await page.eval_on_selector_all(SCROLLERS, _SCROLLING_JS),
                math=await page.evaluate(_MATH_JS),
                colours=await _colours(page),
                page_colours=await page.evaluate(_PAGE_COLOURS_JS),
                chips=[
                    contrast(ink, paper) if float(opacity) == 1 else 0.0
                    for ink, paper, opacity in await page.eval_on_selector_all(
                        ".tll-explorer .tll-s", _CHIPS_JS
                    )
                ],
                **common,
            )
        return looks
    finally:
        await context.close()


async def _look_at_all(site: str, entries: list[str], themes: list[str]) -> dict:
    from playwright.async_api import async_playwright

    gate = asyncio.Semaphore(CONCURRENT)
    visits = [(entry, width) for entry in entries for width in WIDTHS]
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)

        async def one(entry: str, width: str) -> dict[str, Look]:
            async with gate:
                return await _visit(browser, f"{site}/{entry}.html", themes, WIDTHS[width])

        seen = await asyncio.gather(*(one(entry, width) for entry, width in visits))
        await browser.close()
    return {
        (entry, theme, width): look
        for (entry, width), looks in zip(visits, seen, strict=True)
        for theme, look in looks.items()
    }


def look_at_all(
    site: str, entries: list[str], themes: list[str]
) -> dict[tuple[str, str, str], Look]:
    """``{(entry, theme, width): Look}`` for every page ``entry`` (e.g.
    ``"lessons/02_epochs"``), theme, and width (``"desktop"`` or ``"phone"``, see ``WIDTHS``)."""
    result: dict = {}
    failure: list[BaseException] = []

    def work() -> None:
        try:
            result.update(asyncio.run(_look_at_all(site, entries, themes)))
        except BaseException as error:  # raised again in the caller's thread
            failure.append(error)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return result
