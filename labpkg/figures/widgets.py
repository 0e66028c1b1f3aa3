"""Interactive explorers that work without a Python kernel.

``batch_explorer()`` returns self-contained HTML and JavaScript (no external script): on the
book's static site the sliders still move and the counts still update, because the arithmetic
runs in the browser. The JavaScript implements the same formulas as ``labpkg.core.counting``; the
browser test checks that both agree. ``valley_explorer()`` (from ``labpkg.figures.valley_explorer``)
does the same for optimizer paths, with ``torch.optim``'s update rules.

Nothing in labpkg imports this module; chapters call it directly.
"""

from __future__ import annotations

import json
import uuid

from IPython.display import HTML

from labpkg.figures.valley_explorer import valley_explorer, valley_explorer_html

__all__ = [
    "MAX_EPOCHS_DRAWN",
    "batch_explorer",
    "explorer_html",
    "valley_explorer",
    "valley_explorer_html",
]

#: The explorer draws the first epochs only (one row per process each); a note says so.
MAX_EPOCHS_DRAWN = 6

# Text and background follow the page: the book's theme (pydata-sphinx-theme's variables,
# light or dark), else JupyterLab's, else black on white. The samples are solid colours with
# black or white numbers, whichever contrasts more (at least 4.58:1 whatever the colour).
_STYLE = """
.tll-explorer{font:14px/1.4 system-ui,sans-serif;border:1px solid #8884;border-radius:8px;
  padding:12px;margin:8px 0;max-width:760px;
  color:var(--pst-color-text-base,var(--jp-ui-font-color1,#222));
  background:var(--pst-color-background,var(--jp-layout-color0,#fff))}
.tll-explorer label{display:inline-block;min-width:170px;margin:2px 12px 2px 0}
.tll-explorer input[type=range]{vertical-align:middle;width:150px}
.tll-explorer .tll-counts{display:grid;grid-template-columns:auto auto;gap:2px 16px;margin:8px 0}
.tll-explorer .tll-counts b{font-variant-numeric:tabular-nums}
.tll-explorer .tll-epoch{margin:4px 0;display:flex;flex-wrap:wrap;align-items:center;gap:2px}
.tll-explorer .tll-epoch span.tll-name{width:112px;font-size:12px}
.tll-explorer .tll-s{width:18px;height:18px;font-size:10px;line-height:18px;text-align:center;
  border-radius:3px}
.tll-explorer .tll-gap{width:6px}
.tll-explorer .tll-repeat{outline:2px dashed currentColor;outline-offset:-2px}
.tll-explorer .tll-note{margin:4px 0;font-style:italic}
.tll-explorer .tll-note:empty{display:none}
"""

# The arithmetic mirrors labpkg.core.counting: ceil or floor division, accumulation groups.
_SCRIPT = """
(function () {
  const root = document.getElementById(__ID__);
  const q = (role) => root.querySelector('[data-role="' + role + '"]');
  const out = (name, value) => {
    root.querySelector('[data-count="' + name + '"]').textContent = value;
  };
  const colours = ["#E69F00", "#56B4E9", "#009E73", "#CC79A7", "#0072B2", "#D55E00", "#F0E442"];
  const MAX_EPOCHS = __MAX_EPOCHS__;
  function luminance(rgb) {            // WCAG relative luminance of 0-255 sRGB values
    const c = rgb.map((v) => v / 255).map((v) => v <= 0.04045 ? v / 12.92
                                                   : ((v + 0.055) / 1.055) ** 2.4);
    return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
  }
  function chip(hex, tint) {           // the colour mixed with white by `tint`, and its ink
    const rgb = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16))
      .map((v) => Math.round(v + (255 - v) * tint));
    const l = luminance(rgb);           // black or white, whichever contrasts more
    const ink = (l + 0.05) / 0.05 >= 1.05 / (l + 0.05) ? "#000" : "#fff";
    return {background: "rgb(" + rgb.join(", ") + ")", ink: ink};
  }
  function shuffled(n, seed) {          // a small seeded PRNG (mulberry32): same order every view
    let a = seed >>> 0;
    const rand = () => { a = (a + 0x6D2B79F5) >>> 0; let t = a;
      t = Math.imul(t ^ (t >>> 15), t | 1); t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296; };
    const order = Array.from({length: n}, (_, i) => i);
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [order[i], order[j]] = [order[j], order[i]];
    }
    return order;
  }
  function rankOrders(n, w, dropLast, seed) {   // DistributedSampler: pad or cut, then deal
    const order = shuffled(n, seed);
    const perRank = w === 1 ? n : (dropLast ? Math.floor(n / w) : Math.ceil(n / w));
    const dealt = [];                   // [sample id, repeated?] in the sampler's order
    for (let i = 0; i < perRank * w; i++) dealt.push([order[i % n], i >= n]);
    return Array.from({length: w}, (_, r) => dealt.filter((_, i) => i % w === r));
  }
  function update() {
    const n = +q("n").value, b = +q("batch").value, epochs = +q("epochs").value;
    const k = +q("accumulate").value, w = +q("world").value, dropLast = q("drop_last").checked;
    for (const r of ["n", "batch", "epochs", "accumulate", "world"]) {
      root.querySelector('[data-show="' + r + '"]').textContent = q(r).value;
    }
    const perRank = w === 1 ? n : (dropLast ? Math.floor(n / w) : Math.ceil(n / w));
    const batches = dropLast ? Math.floor(perRank / b) : Math.ceil(perRank / b);
    const used = dropLast ? batches * b : perRank;          // per process
    const last = batches === 0 ? 0 : used - (batches - 1) * b;
    const updates = Math.ceil(batches / k);
    out("per_rank", perRank); out("batches", batches); out("last", last);
    out("dropped", Math.max(n - used * w, 0)); out("padded", Math.max(used * w - n, 0));
    out("updates", updates); out("total", updates * epochs); out("effective", b * k * w);
    const view = root.querySelector(".tll-view"); view.textContent = "";
    root.querySelector("[data-note]").textContent = epochs > MAX_EPOCHS
      ? "Drawn below: the first " + MAX_EPOCHS + " of the " + epochs + " epochs." : "";
    for (let e = 0; e < Math.min(epochs, MAX_EPOCHS); e++) {
      rankOrders(n, w, dropLast, 1234 + e).forEach((samples, rank) => {
        const row = document.createElement("div"); row.className = "tll-epoch";
        const name = document.createElement("span"); name.className = "tll-name";
        name.textContent = "epoch " + (e + 1) + (w > 1 ? " · rank " + rank : "");
        row.appendChild(name);
        samples.forEach(([id, repeated], pos) => {
          const batch = Math.floor(pos / b);
          if (pos > 0 && pos % b === 0) {
            const gap = document.createElement("span");
            gap.className = "tll-gap";
            row.appendChild(gap);
          }
          const s = document.createElement("span"); s.className = "tll-s"; s.textContent = id;
          const dropped = batch >= batches;     // later mini-batches of an update: paler
          const look = dropped ? chip("#999999", 0.5)
            : chip(colours[Math.floor(batch / k) % colours.length], 0.5 * (batch % k) / k);
          s.style.background = look.background; s.style.color = look.ink;
          if (repeated) s.classList.add("tll-repeat");
          s.title = dropped ? "dropped (drop_last)"
            : "mini-batch " + (batch + 1) + ", update " + (Math.floor(batch / k) + 1)
              + (repeated ? ", repeated to pad the shares" : "");
          row.appendChild(s);
        });
        view.appendChild(row);
      });
    }
  }
  root.querySelectorAll("input").forEach((el) => el.addEventListener("input", update));
  update();
})();
"""


def explorer_html(
    n: int = 20,
    batch_size: int = 6,
    epochs: int = 2,
    drop_last: bool = False,
    accumulate: int = 1,
    world_size: int = 1,
    max_n: int = 60,
) -> str:
    """The explorer as an HTML string (see ``batch_explorer``)."""
    # (role in the page, argument, label, start value, slider maximum); every slider starts at 1
    sliders = [
        ("n", "n", "samples in the dataset", n, max_n),
        ("batch", "batch_size", "batch size", batch_size, 32),
        ("epochs", "epochs", "epochs", epochs, 10),
        ("accumulate", "accumulate", "mini-batches per update", accumulate, 8),
        ("world", "world_size", "processes (W)", world_size, 4),
    ]
    for _, argument, _, value, most in sliders:
        if not 1 <= value <= most:
            raise ValueError(
                f"{argument} must be between 1 and {most} (the slider's range), got {value}"
            )
    uid = f"tll-explorer-{uuid.uuid4().hex[:8]}"  # unique: two explorers on a page must not clash
    script = _SCRIPT.replace("__ID__", json.dumps(uid)).replace(
        "__MAX_EPOCHS__", str(MAX_EPOCHS_DRAWN)
    )
    return (
        f'<div class="tll-explorer" id="{uid}"><style>{_STYLE}</style>'
        f'{_controls(sliders, drop_last)}<div class="tll-counts">{_COUNTS}</div>'
        f'<p class="tll-note" data-note></p><div class="tll-view"></div>'
        f"<script>{script}</script></div>"
    )


def _controls(sliders: list[tuple[str, str, str, int, int]], drop_last: bool) -> str:
    controls = "".join(
        f'<label>{text}: <b data-show="{role}">{value}</b><br>'
        f'<input type="range" data-role="{role}" min="1" max="{most}" value="{value}"></label>'
        for role, _, text, value, most in sliders
    )
    checked = " checked" if drop_last else ""
    return controls + (
        f'<label><input type="checkbox" data-role="drop_last"{checked}> drop_last</label>'
    )


# The counts the script fills in (data-count names), with their labels.
_COUNTS = "".join(
    f'<span>{text}</span><b data-count="{name}">?</b>'
    for name, text in [
        ("per_rank", "samples per process per epoch"),
        ("batches", "mini-batches per epoch (per process)"),
        ("last", "samples in the last mini-batch"),
        ("dropped", "samples dropped per epoch"),
        ("padded", "samples repeated to even out the processes"),
        ("updates", "updates (iterations) per epoch"),
        ("total", "updates (iterations) in the whole run"),
        ("effective", "samples per update (batch × accumulation × W)"),
    ]
)


def batch_explorer(**kwargs) -> HTML:
    """Sliders for dataset size, batch size, epochs, accumulation, processes and ``drop_last``.

    The first ``MAX_EPOCHS_DRAWN`` epochs are drawn (a note says so when there are more),
    each as one row per process of numbered samples in their shuffled order,
    coloured by the update they belong to (the processes make each update together, so one
    colour spans every row); samples that ``DistributedSampler`` repeats to give every
    process the same count are outlined. The counts (samples per process, mini-batches and
    updates per epoch, total updates, the last batch's size, dropped and repeated samples,
    samples per update) follow the sliders.

    Args:
        **kwargs: starting values, see ``explorer_html`` (n, batch_size, epochs, drop_last,
            accumulate, world_size, max_n).

    Returns:
        An ``IPython.display.HTML`` object; display it (last line of a cell) to show it.
    """
    return HTML(explorer_html(**kwargs))
