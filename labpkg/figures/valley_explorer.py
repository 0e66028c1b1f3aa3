"""The valley explorer: SGD, momentum and Adam on the valley, with sliders, and no kernel.

``valley_explorer()`` returns self-contained HTML and JavaScript (no external script), like
``labpkg.widgets.batch_explorer``: on the book's static site the sliders move and the paths
are recomputed in the browser. The JavaScript applies ``torch.optim``'s update rules (SGD with
PyTorch's momentum, Adam with its bias correction and ε = 1e-8) to the valley of
``labpkg.valley``, to rounding: it does not mirror the two formulas of torch's ``lerp_``
(one for weights below 0.5, one above) nor torch's ``pow``, so the last bits may differ. The
browser test checks its paths against ``labpkg.valley.optimizer_path`` (``atol=1e-5``).

``labpkg.widgets`` exports it; nothing in the training loop imports it.
"""

from __future__ import annotations

import json
import uuid

from IPython.display import HTML

from labpkg.figures.valley import CURVATURES, START

__all__ = ["LEARNING_RATES", "SECOND_BETAS", "valley_explorer", "valley_explorer_html"]

#: The learning-rate slider's stops (SGD leaves the valley above 2 / 20 = 0.1).
LEARNING_RATES = (0.005, 0.01, 0.02, 0.03, 0.05, 0.07, 0.08, 0.09, 0.095, 0.1, 0.105, 0.12,
                  0.15, 0.2, 0.3)  # fmt: skip
#: The β₂ slider's stops.
SECOND_BETAS = (0.9, 0.99, 0.999, 0.9999)

# Text and background follow the page, as the batch explorer's do (the book's theme, light or
# dark, else JupyterLab's, else black on white); the paths' colours keep at least 3:1 against
# both backgrounds (WCAG's contrast for graphics), the contours are the text colour.
_STYLE = """
.tll-valley{font:14px/1.4 system-ui,sans-serif;border:1px solid #8884;border-radius:8px;
  padding:12px;margin:8px 0;max-width:760px;--sgd:#0072B2;--momentum:#D55E00;--adam:#009E73;
  color:var(--pst-color-text-base,var(--jp-ui-font-color1,#222));
  background:var(--pst-color-background,var(--jp-layout-color0,#fff))}
.tll-valley label{display:inline-block;min-width:150px;margin:2px 12px 2px 0}
.tll-valley input[type=range]{vertical-align:middle;width:140px;max-width:100%}
.tll-valley svg{display:block;width:100%;height:auto;margin:6px 0 0}
.tll-valley .tll-caption{font-variant-numeric:tabular-nums;margin:2px 0 0}
.tll-valley .tll-swatch{display:inline-block;width:22px;height:4px;border-radius:2px;
  vertical-align:middle;margin-right:6px;background:var(--c)}
"""

# torch.optim's rules, step by step as torch applies them (float64 here and in the check).
_SCRIPT = """
(function () {
  const root = document.getElementById(__ID__);
  const CURVATURES = __CURVATURES__, START = __START__, EPS = 1e-8;
  const LRS = __LRS__, BETA2S = __BETA2S__;
  const VIEW = {x0: -2.3, x1: 1.3, y0: -0.6, y1: 0.6, scale: 500 / 3.6};
  const NS = "http://www.w3.org/2000/svg";
  function path(rule, o) {   // rule: "sgd", "momentum" or "adam"; o: lr, momentum, beta1, ...
    let w = START.slice(), velocity = null;
    const m = [0, 0], v = [0, 0], points = [w.slice()];
    for (let t = 1; t <= o.steps; t++) {
      const g = w.map((wi, i) => CURVATURES[i] * wi);   // the gradient of ½·(a·x² + b·y²)
      if (rule === "adam") {
        const correction1 = 1 - o.beta1 ** t, correction2 = Math.sqrt(1 - o.beta2 ** t);
        for (let i = 0; i < 2; i++) {
          m[i] += (1 - o.beta1) * (g[i] - m[i]);            // β₁·m + (1 − β₁)·g
          v[i] = o.beta2 * v[i] + (1 - o.beta2) * g[i] * g[i];
          w[i] -= (o.lr / correction1) * m[i] / (Math.sqrt(v[i]) / correction2 + EPS);
        }
      } else {
        let step = g;
        if (rule === "momentum" && o.momentum > 0) {      // PyTorch: v ← μ·v + g (v = g first)
          velocity = velocity === null ? g.slice() : velocity.map((b, i) => o.momentum * b + g[i]);
          step = velocity;
        }
        w = w.map((wi, i) => wi - o.lr * step[i]);
      }
      points.push(w.slice());
    }
    return points;
  }
  root.tllPath = path;                                 // the browser test checks it
  const loss = ([x, y]) => 0.5 * (CURVATURES[0] * x * x + CURVATURES[1] * y * y);
  const sx = (x) => (x - VIEW.x0) * VIEW.scale, sy = (y) => (VIEW.y1 - y) * VIEW.scale;
  const q = (role) => root.querySelector('[data-role="' + role + '"]');
  function options() {
    return {lr: LRS[+q("lr").value], momentum: +q("momentum").value,
            beta1: +q("beta1").value, beta2: BETA2S[+q("beta2").value], steps: +q("steps").value};
  }
  function el(name, attributes) {
    const e = document.createElementNS(NS, name);
    for (const [k, v] of Object.entries(attributes)) e.setAttribute(k, v);
    return e;
  }
  function update() {
    const o = options();
    const shown = {lr: o.lr, momentum: o.momentum.toFixed(2), beta1: o.beta1.toFixed(2),
                   beta2: o.beta2, steps: o.steps};
    for (const [role, value] of Object.entries(shown)) {
      root.querySelector('[data-show="' + role + '"]').textContent = value;
    }
    const top = loss(START);
    root.querySelectorAll("[data-rule]").forEach((panel) => {
      const rule = panel.dataset.rule;
      const points = path(rule, o);
      const svg = panel.querySelector("svg"), drawn = panel.querySelector("[data-drawn]");
      drawn.textContent = "";
      for (let k = 0; k < 8; k++) {                      // contours: each half the next's loss
        const level = top * 0.5 ** k;
        drawn.appendChild(el("ellipse", {cx: sx(0), cy: sy(0), fill: "none",
          rx: Math.sqrt(2 * level / CURVATURES[0]) * VIEW.scale,
          ry: Math.sqrt(2 * level / CURVATURES[1]) * VIEW.scale,
          stroke: "currentColor", "stroke-opacity": 0.3}));
      }
      drawn.appendChild(el("circle", {cx: sx(0), cy: sy(0), r: 4, fill: "currentColor"}));
      const finite = [];                                  // stop where a path leaves for good
      for (const p of points) { if (!p.every((c) => Math.abs(c) < 1e3)) break; finite.push(p); }
      const xy = finite.map(([x, y]) => sx(x).toFixed(1) + "," + sy(y).toFixed(1)).join(" ");
      drawn.appendChild(el("polyline", {points: xy, fill: "none", "data-path": rule,
                                        style: "stroke: var(--c); stroke-width: 2"}));
      for (const [x, y] of finite) {
        drawn.appendChild(el("circle", {cx: sx(x), cy: sy(y), r: 2.5, style: "fill: var(--c)"}));
      }
      const end = loss(points[points.length - 1]);
      panel.querySelector("[data-loss]").textContent = finite.length < points.length
        || !(end < 1e6) ? "diverged" : end.toPrecision(3);
      svg.setAttribute("aria-label", rule + " path, " + points.length + " points");
    });
  }
  root.querySelectorAll("input").forEach((e) => e.addEventListener("input", update));
  update();
})();
"""

_PANELS = (("sgd", "SGD", "--sgd"), ("momentum", "SGD + momentum", "--momentum"),
           ("adam", "Adam", "--adam"))  # fmt: skip


def valley_explorer_html(
    lr: float = 0.09, momentum: float = 0.5, beta1: float = 0.9, beta2: float = 0.999,
    steps: int = 40,
) -> str:  # fmt: skip
    """The explorer as an HTML string (see ``valley_explorer``)."""
    if lr not in LEARNING_RATES:
        raise ValueError(f"lr must be one of the slider's stops {LEARNING_RATES}, got {lr}")
    if beta2 not in SECOND_BETAS:
        raise ValueError(f"beta2 must be one of the slider's stops {SECOND_BETAS}, got {beta2}")
    for name, value in (("momentum", momentum), ("beta1", beta1)):
        if not (0 <= value <= 0.99 and round(value, 2) == value):
            raise ValueError(f"{name} must be between 0 and 0.99 in steps of 0.01, got {value}")
    if not 1 <= steps <= 100:
        raise ValueError(f"steps must be between 1 and 100 (the slider's range), got {steps}")
    uid = f"tll-valley-{uuid.uuid4().hex[:8]}"  # unique: two explorers on a page must not clash
    script = (
        _SCRIPT.replace("__ID__", json.dumps(uid))
        .replace("__CURVATURES__", json.dumps(list(CURVATURES)))
        .replace("__START__", json.dumps(list(START)))
        .replace("__LRS__", json.dumps(list(LEARNING_RATES)))
        .replace("__BETA2S__", json.dumps(list(SECOND_BETAS)))
    )
    sliders = [  # (role, label, min, max, step, start position)
        ("lr", "learning rate", 0, len(LEARNING_RATES) - 1, 1, LEARNING_RATES.index(lr)),
        ("momentum", "momentum μ", 0, 0.99, 0.01, momentum),
        ("beta1", "Adam's β₁", 0, 0.99, 0.01, beta1),
        ("beta2", "Adam's β₂", 0, len(SECOND_BETAS) - 1, 1, SECOND_BETAS.index(beta2)),
        ("steps", "updates", 1, 100, 1, steps),
    ]
    controls = "".join(
        f'<label>{text}: <b data-show="{role}"></b><br><input type="range" data-role="{role}" '
        f'min="{low}" max="{high}" step="{step}" value="{value}" aria-label="{text}"></label>'
        for role, text, low, high, step, value in sliders
    )
    height = 1.2 * 500 / 3.6  # the view's y range at the x scale: equal axes
    panels = "".join(
        f'<div data-rule="{rule}" style="--c:var({colour})">'
        f'<p class="tll-caption"><span class="tll-swatch"></span><b>{name}</b>: '
        f"loss after the last update "
        f'<b data-loss>?</b></p><svg viewBox="0 0 500 {height:.1f}" role="img">'
        f"<g data-drawn></g></svg></div>"
        for rule, name, colour in _PANELS
    )
    return (
        f'<div class="tll-valley" id="{uid}"><style>{_STYLE}</style>{controls}{panels}'
        f"<script>{script}</script></div>"
    )


def valley_explorer(**kwargs) -> HTML:
    """Sliders for the learning rate, momentum, Adam's β₁ and β₂, and the number of updates,
    over three paths on the valley of ``labpkg.valley`` (plain SGD, SGD with momentum, Adam),
    each with the loss it ends at. The paths follow ``torch.optim``'s update rules, to rounding.

    Args:
        **kwargs: starting values, see ``valley_explorer_html`` (lr, momentum, beta1, beta2,
            steps).

    Returns:
        An ``IPython.display.HTML`` object; display it (last line of a cell) to show it.
    """
    return HTML(valley_explorer_html(**kwargs))
