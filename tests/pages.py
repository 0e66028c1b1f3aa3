"""Look at every page of the built site in headless Chromium, several pages at a time.

One load per page, looked at in each theme (switched as the page's own button does),
records everything the page tests check (``Look``): title, console errors, requests that
left 127.0.0.1, figures with the luminance of their paper and ink, the Colab link. Pages
load concurrently (Playwright's async API, in a thread of its own so it never meets the
event loop of the synchronous API the interactive tests use): most of a visit is waiting
for the page to go quiet, not computing.
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
    title: str
    heading: str
    broken_images: list[str]
    errors: list[str]
    outside_requests: list[str]
    colab_links: list[str]
    downloads: int
    figures: list[dict]  # src, width and natural width (px), padding, paper and ink luminance


_FIGURES_JS = """els => els.map(e => {
    const s = getComputedStyle(e);
    const pad = parseFloat(s.paddingLeft) + parseFloat(s.paddingRight);
    return {src: e.getAttribute('src'), width: e.clientWidth - pad,
            natural: e.naturalWidth, padding: parseFloat(s.paddingLeft)};
})"""
_BROKEN_JS = (
    "Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)"
)


def luminance(rgb):
    """WCAG relative luminance of an (..., 3) array of 0-255 sRGB values."""
    import numpy as np

    c = np.asarray(rgb, dtype=float) / 255
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return linear @ [0.2126, 0.7152, 0.0722]


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


async def _figures(page) -> list[dict]:
    figures = await page.eval_on_selector_all(FIGURES, _FIGURES_JS)
    for i, fig in enumerate(figures):
        shot = await page.locator(FIGURES).nth(i).screenshot()
        fig.update(paper_and_ink(shot, fig["padding"]))
    return figures


async def _visit(browser, url: str, themes: list[str]) -> dict[str, Look]:
    """Load ``url`` once (in the first theme), then look at it in each theme."""
    context = await browser.new_context(viewport=VIEWPORT)
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
            figures = await _figures(page)
            looks[theme] = Look(theme=shown, errors=list(errors), figures=figures, **common)
        return looks
    finally:
        await context.close()


async def _look_at_all(site: str, entries: list[str], themes: list[str]) -> dict:
    from playwright.async_api import async_playwright

    gate = asyncio.Semaphore(CONCURRENT)
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)

        async def one(entry: str) -> dict[str, Look]:
            async with gate:
                return await _visit(browser, f"{site}/{entry}.html", themes)

        visits = await asyncio.gather(*(one(entry) for entry in entries))
        await browser.close()
    return {(e, t): look for e, v in zip(entries, visits, strict=True) for t, look in v.items()}


def look_at_all(site: str, entries: list[str], themes: list[str]) -> dict[tuple[str, str], Look]:
    """``{(entry, theme): Look}`` for every page ``entry`` (e.g. ``"lessons/02_epochs"``)."""
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
