"""Open every page of the built site in real headless Chromium, with the network cut off.

Chromium comes from the system (Debian's `chromium`); Playwright never downloads a browser.
Locally the test skips if Chromium is missing; in CI (CI=true) a missing browser is a failure.

Each page is opened once per width (a laptop's and a phone's) and looked at in each theme
(``pages.Look``, several pages at a time): the visit records what the page tests below check
(title, errors, requests, figures and their pixels, the Colab link, what scrolls sideways,
the colours of the explorers), so the checks stay separate tests without loading a page once
per check.
The interactive tests (explorer, widget) drive a page of their own.
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import threading
from pathlib import Path
from urllib.parse import urlparse

import pytest
from conftest import ROOT, drawing_cells, toc_files
from pages import CHROMIUM, LAUNCH_ARGS, PHONE, VIEWPORT, WIDTHS, contrast, is_local, look_at_all

pytestmark = pytest.mark.xdist_group("site")  # one worker runs the rehearsal, build, browser


def _require_chromium() -> None:
    have = Path(CHROMIUM).exists() or shutil.which("chromium")
    if have:
        return
    message = f"Chromium not found at {CHROMIUM}; install it with: apt-get install -y chromium"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def site_url(built_site):
    assert built_site.returncode == 0, "the site did not build; see test_book_build"
    handler = functools.partial(_QuietHandler, directory=str(built_site.html))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output readable
        pass


@pytest.fixture(scope="module")
def browser():
    _require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        yield browser
        browser.close()


class PageVisit:
    """One page load with every request and console message recorded."""

    def __init__(self, browser, url: str, theme: str | None = None, viewport=VIEWPORT):
        self.context = browser.new_context(viewport=viewport)
        if theme is not None:  # the site's light/dark switch stores its choice here
            self.context.add_init_script(f"localStorage.setItem('mode', '{theme}')")
        self.page = self.context.new_page()
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("console", self._on_console)
        self.page.on("pageerror", lambda e: self._record(f"pageerror: {e}"))
        # Anything not served by 127.0.0.1 is blocked (and recorded above).
        self.page.route(lambda u: not is_local(u), lambda route: route.abort())
        self.response = self.page.goto(url, wait_until="load")

    def _on_console(self, msg) -> None:
        if msg.type == "error":
            self._record(f"console: {msg.text}")

    def _record(self, error: str) -> None:
        self.errors.append(error)

    def close(self) -> None:
        self.context.close()


PAGES = toc_files()
LESSONS = [e for e in PAGES if e.startswith("lessons/")]
THEMES = ("light", "dark")


@pytest.fixture(scope="module")
def look(site_url):
    """``look(entry, theme, width="desktop")``: what the visit of that page found. The first
    use visits every page at both widths, in both themes, several at a time."""
    _require_chromium()
    looks = look_at_all(site_url, PAGES, list(THEMES))
    return lambda entry, theme, width="desktop": looks[entry, theme, width]


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("theme", THEMES)
@pytest.mark.parametrize("entry", PAGES)
def test_page_loads_offline_with_title_images_and_no_errors(look, entry, theme, width):
    seen = look(entry, theme, width)
    assert seen.ok
    assert seen.theme == theme
    assert seen.width == WIDTHS[width]["width"]
    assert seen.title.endswith("Training Loop Lab")
    assert seen.heading
    assert seen.broken_images == []
    assert seen.errors == []
    assert seen.outside_requests == [], "requests left 127.0.0.1"
    assert not seen.page_scrolls, "the page is wider than the window"


@pytest.mark.parametrize("entry", LESSONS)
def test_code_and_outputs_fit_the_column_on_a_laptop(look, entry):
    """No code line, printed line or HTML output makes the reader scroll sideways at 1280 px
    (lessons/ruff.toml sets the line length the column holds)."""
    scrolling = look(entry, "light").scrolling
    assert scrolling == [], "\n".join(
        f"{s['where']} {s['scroll']} px in {s['client']} px: {s['text']}" for s in scrolling
    )


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("entry", PAGES)
def test_display_equations_fit_the_column(look, entry, width):
    """MathJax's box scrolls a wider equation, but a phone shows no scrollbar: the equation
    looks whole and is cut off. So every equation fits, at both widths."""
    for eq in look(entry, "light", width).math:
        assert eq["right"] <= eq["article"] + 1, f"runs off the page: {eq['tex']}"
        assert eq["scroll"] <= eq["client"] + 1, f"cut off: {eq['scroll']} px in {eq['client']}"


IMAGE_FILE = re.compile(r"(^|/)[\w.-]+\.(png|jpe?g|svg|gif|webp)$", re.IGNORECASE)


@pytest.mark.parametrize("entry", LESSONS)
def test_every_figure_says_what_it_shows_in_its_alt_text(look, entry):
    for fig in look(entry, "light").figures:
        alt = (fig["alt"] or "").strip()
        assert alt and not IMAGE_FILE.search(alt), f"{fig['src']}: alt {alt!r}"
        assert len(alt.split()) >= 5, f"{fig['src']}: alt {alt!r} says too little"


EXPLORERS = (".tll-explorer", ".tll-valley")


@pytest.mark.parametrize("theme", THEMES)
@pytest.mark.parametrize("entry", LESSONS)
def test_explorers_and_progress_bars_follow_the_theme(look, entry, theme):
    """The explorers draw on the theme's own background in the theme's text colour (in the
    dark theme too, not on a light plate); progress bars follow it; text contrasts >= 4.5."""
    seen = look(entry, theme)
    for found in seen.colours:
        where = f"{found['selector']} ({theme})"
        assert contrast(found["text"], found["background"]) >= 4.5, f"{where}: {found}"
        if found["selector"] in EXPLORERS or theme == "dark":
            assert found["background"] == seen.page_colours["background"], f"{where}: {found}"
            assert found["text"] == seen.page_colours["text"], f"{where}: {found}"


@pytest.mark.parametrize("theme", THEMES)
@pytest.mark.parametrize("entry", LESSONS)
def test_the_numbered_samples_of_the_batch_explorer_are_readable(look, entry, theme):
    chips = look(entry, theme).chips
    low = [round(c, 2) for c in chips if c < 4.5]
    assert low == [], f"{len(low)} of {len(chips)} samples below 4.5:1 (0: translucent)"


@pytest.mark.parametrize("entry", LESSONS)
def test_colab_button_points_at_this_notebook(look, book_config, entry):
    repo = book_config["repository"]
    expected = (
        f"https://colab.research.google.com/github/{urlparse(repo['url']).path.strip('/')}"
        f"/blob/{repo['branch']}/{entry}.ipynb"
    )
    seen = look(entry, "light")
    assert seen.colab_links == [expected]
    assert seen.downloads >= 1, "no .ipynb download button"


def test_setup_chapter_renders_its_progress_widget(browser, site_url):
    visit = PageVisit(browser, f"{site_url}/lessons/00_setup.html")
    try:
        bar = visit.page.locator(".widget-subarea .widget-hprogress").first
        bar.wait_for(state="visible", timeout=15_000)
        text = visit.page.locator(".widget-subarea").first.inner_text()
        text = " ".join(text.replace("\u2007", " ").split())  # tqdm pads with figure spaces
        assert "epoch 1/1: 100%" in text and "4/4" in text  # the saved, finished bar
        assert visit.errors == []
    finally:
        visit.close()


@pytest.mark.parametrize("viewport", [PHONE, VIEWPORT], ids=["phone", "desktop"])
def test_the_sidebar_button_opens_the_contents_on_a_phone_and_hides_them_on_a_desktop(
    browser, site_url, viewport
):
    from playwright.sync_api import expect

    visit = PageVisit(browser, f"{site_url}/lessons/02_epochs.html", viewport=viewport)
    try:
        page, phone = visit.page, viewport is PHONE
        # one toggle: with a second (hidden) one, the themes' scripts bind that one instead
        assert page.locator(".primary-toggle").count() == 1
        assert page.eval_on_selector("#pst-header", "h => h.offsetHeight") == 0  # no empty bar
        contents = page.locator("nav.bd-docs-nav a.reference").first
        expect(contents).to_be_hidden() if phone else expect(contents).to_be_visible()
        page.locator(".primary-toggle").click()
        expect(contents).to_be_visible() if phone else expect(contents).to_be_hidden()
        assert visit.errors == []
    finally:
        visit.close()


def _explorer_counts(page) -> dict[str, int]:
    return page.eval_on_selector_all(
        ".tll-explorer [data-count]",
        "els => Object.fromEntries(els.map(e => [e.dataset.count, Number(e.textContent)]))",
    )


def _set(page, role: str, value) -> None:
    """Move a slider (or tick the box) as a user would: set it and fire its input event."""
    page.eval_on_selector(
        f".tll-explorer [data-role='{role}']",
        "(el, v) => { if (el.type === 'checkbox') el.checked = v; else el.value = v;"
        " el.dispatchEvent(new Event('input', {bubbles: true})); }",
        value,
    )


def test_batch_explorer_updates_its_counts_without_a_kernel(browser, site_url):
    import labpkg
    from labpkg.figures.widgets import MAX_EPOCHS_DRAWN

    visit = PageVisit(browser, f"{site_url}/lessons/03_iterations.html")
    try:
        page = visit.page
        page.locator(".tll-explorer").wait_for(state="visible")
        start = _explorer_counts(page)
        assert start["batches"] == labpkg.batches_per_epoch(20, 6)  # the initial sliders
        slider = page.locator(".tll-explorer [data-role='batch']")
        slider.focus()
        slider.press("ArrowRight")  # a real key press: batch 6 -> 7
        assert _explorer_counts(page)["batches"] == labpkg.batches_per_epoch(20, 7)
        cases = [  # n, batch, epochs, drop_last, accumulate, processes
            (1000 % 61 + 1, 7, 3, False, 1, 1),
            (60, 8, 5, True, 3, 1),
            (37, 32, 10, False, 8, 1),
            (1, 1, 1, True, 1, 1),
            (59, 5, 2, True, 2, 1),
            (20, 3, 2, False, 2, 2),
            (23, 4, 3, False, 1, 4),  # 23 over 4 processes: one sample repeated
            (23, 4, 2, True, 2, 3),  # the sampler cuts to 21, each loader drops 3
            (3, 2, 1, False, 1, 4),  # fewer samples than processes
        ]
        for n, b, epochs, drop_last, k, w in cases:
            for role, value in (
                ("n", n),
                ("batch", b),
                ("epochs", epochs),
                ("accumulate", k),
                ("world", w),
                ("drop_last", drop_last),
            ):
                _set(page, role, value)
            counts = _explorer_counts(page)
            per_rank = labpkg.samples_per_rank(n, w, drop_last)
            batches = labpkg.batches_per_epoch(n, b, drop_last, world_size=w)
            assert counts["per_rank"] == per_rank
            assert counts["batches"] == batches
            assert counts["updates"] == labpkg.updates_per_epoch(n, b, k, drop_last, w)
            assert counts["total"] == labpkg.total_updates(n, b, epochs, k, drop_last, w)
            assert counts["effective"] == labpkg.effective_batch_size(b, k, world_size=w)
            assert counts["dropped"] == (n - w * batches * b if drop_last else 0)
            assert counts["padded"] == (0 if drop_last else w * per_rank - n)
            rows = page.locator(".tll-explorer .tll-epoch")
            drawn = min(epochs, MAX_EPOCHS_DRAWN)
            assert rows.count() == drawn * w  # one row per process per epoch
            note = page.locator(".tll-explorer [data-note]").inner_text()
            said = f"Drawn below: the first {drawn} of the {epochs} epochs."
            assert note == (said if drawn < epochs else ""), "says when it draws fewer"
            assert rows.first.locator(".tll-s").count() == per_rank
            shown = page.eval_on_selector_all(
                ".tll-explorer .tll-epoch",
                "rows => rows.map(r => r.querySelectorAll('.tll-s:not(.tll-repeat)').length)",
            )
            # the processes' shares of one epoch, repeats left out: each sample at most once
            assert sum(shown[:w]) == (w * per_rank if drop_last else n)
            ids = page.eval_on_selector_all(
                ".tll-explorer .tll-epoch",
                "rows => rows.map(r => Array.from("
                "r.querySelectorAll('.tll-s'), s => Number(s.textContent)))",
            )[:w]
            dealt = [ids[i % w][i // w] for i in range(w * per_rank)]  # DistributedSampler's
            order = dealt[: min(n, len(dealt))]  # rank r takes positions r, r + W, ...
            if drop_last:  # the sampler cut the tail: distinct samples, none repeated
                assert len(set(order)) == len(order) == w * per_rank
            else:  # every sample once, then repeats
                assert sorted(order) == list(range(n))
            assert dealt == (order * w)[: w * per_rank]  # padding repeats the order's start
        assert visit.errors == []
    finally:
        visit.close()


# --------------------------------------------------------------------------------- figures
TEN_POINT_PX = 10 * 96 / 72  # CSS pixels
#: The smallest figure text on a phone, in CSS pixels. WCAG sets no minimum text size, and a
#: figure is an image: the settings that keep a browser's text legible (a minimum font size,
#: Android's font scale, iOS Dynamic Type) never enlarge it, so only the figure can. 9 px is
#: the floor chosen here for short labels (tick values, legend entries) read at a phone's
#: distance (the page's body text is 16 px there; Firefox's minimum-font-size setting starts
#: at 9 px). The laptop keeps its 10 pt (13.3 px).
PHONE_MIN_PX = 9.0
MIN_TEXT_PX = {"desktop": TEN_POINT_PX, "phone": PHONE_MIN_PX}


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("entry", LESSONS)
def test_every_drawing_cell_has_its_figure_on_the_page_at_a_readable_size(
    look, built_site, entry, width
):
    from PIL import Image

    import labpkg.figures.viz

    expected = len(drawing_cells(ROOT / f"{entry}.ipynb"))
    figures = look(entry, "light", width).figures
    assert len(figures) == expected, f"{len(figures)} figures for {expected} drawing cells"
    for fig in figures:
        dpi = Image.open(built_site.html / "_images" / fig["src"].split("/")[-1]).info["dpi"][0]
        scale = fig["width"] / fig["natural"]  # CSS px per image px
        smallest = labpkg.viz.MIN_FONT_PT * dpi / 72 * scale
        assert smallest >= MIN_TEXT_PX[width], f"{fig['src']}: text {smallest:.1f} px as rendered"


@pytest.mark.parametrize("theme", THEMES)
@pytest.mark.parametrize("entry", LESSONS)
def test_figures_keep_light_paper_and_dark_ink_in_both_themes(look, entry, theme):
    for i, fig in enumerate(look(entry, theme).figures):
        where = f"{entry} figure {i + 1} ({theme})"
        assert fig["paper"] > 0.5, f"{where}: paper luminance {fig['paper']:.2f}"
        contrast = (fig["paper"] + 0.05) / (fig["ink"] + 0.05)
        assert contrast >= 7, f"{where}: paper {fig['paper']:.2f} ink {fig['ink']:.3f}"


# ------------------------------------------------------------------------ valley explorer
VALLEY_CASES = [  # (explorer's rule, torch.optim name, options as the sliders give them)
    ("sgd", "sgd", {"lr": 0.09, "momentum": 0.5, "beta1": 0.9, "beta2": 0.999, "steps": 40}),
    ("momentum", "sgd", {"lr": 0.09, "momentum": 0.5, "beta1": 0.9, "beta2": 0.999, "steps": 40}),
    ("momentum", "sgd", {"lr": 0.05, "momentum": 0.9, "beta1": 0.9, "beta2": 0.999, "steps": 100}),
    ("adam", "adam", {"lr": 0.09, "momentum": 0.5, "beta1": 0.9, "beta2": 0.999, "steps": 40}),
    ("adam", "adam", {"lr": 0.3, "momentum": 0.0, "beta1": 0.0, "beta2": 0.9, "steps": 100}),
    ("adam", "adam", {"lr": 0.005, "momentum": 0.0, "beta1": 0.99, "beta2": 0.9999, "steps": 7}),
]


def _torch_options(rule: str, o: dict) -> dict:
    if rule == "adam":
        return {"betas": (o["beta1"], o["beta2"])}
    return {"momentum": o["momentum"]} if rule == "momentum" else {}


def test_valley_explorer_follows_torch_optim_and_redraws_without_a_kernel(browser, site_url):
    import torch

    import labpkg

    visit = PageVisit(browser, f"{site_url}/lessons/12_optimizers.html")
    try:
        page = visit.page
        explorer = page.locator(".tll-valley")
        explorer.wait_for(state="visible")
        assert explorer.count() == 1
        for rule, name, o in VALLEY_CASES:
            theirs = labpkg.valley.optimizer_path(
                name, o["lr"], steps=o["steps"], **_torch_options(rule, o)
            )
            ours = page.eval_on_selector(
                ".tll-valley", "(root, a) => root.tllPath(a[0], a[1])", [rule, o]
            )
            ours = torch.tensor(ours, dtype=torch.float64)
            assert ours.shape == theirs.shape, (rule, o)
            torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-5, msg=f"{rule} {o}")
        drawn = "el => el.getAttribute('points')"
        line = page.locator(".tll-valley polyline[data-path='sgd']")
        before, loss_before = line.evaluate(drawn), _valley_loss_shown(page, "sgd")
        assert len(before.split()) == 40 + 1  # the start value: 40 updates
        slider = page.locator(".tll-valley [data-role='lr']")
        slider.focus()
        slider.press("ArrowLeft")  # a real key press: lr 0.09 -> 0.08
        assert page.locator(".tll-valley [data-show='lr']").inner_text() == "0.08"
        after = line.evaluate(drawn)
        assert after != before and _valley_loss_shown(page, "sgd") != loss_before
        path = labpkg.valley.optimizer_path("sgd", 0.08)  # what the page now draws
        assert _valley_loss_shown(page, "sgd") == f"{labpkg.valley.valley_loss(path[-1]):.3g}"
        steps = page.locator(".tll-valley [data-role='steps']")
        steps.focus()
        steps.press("ArrowRight")
        assert len(line.evaluate(drawn).split()) == 40 + 2
        assert visit.errors == []
    finally:
        visit.close()


def _valley_loss_shown(page, rule: str) -> str:
    return page.locator(f".tll-valley [data-rule='{rule}'] [data-loss]").inner_text()
