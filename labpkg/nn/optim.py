"""Optimizers: ``torch.optim``'s by name, and SGD, RMSprop, Adam, AdamW written out.

``get_optimizer`` builds ``torch.optim``'s by name; ``SGD`` ... ``AdamW`` here are written
out from their update rules, to read and to check against ``torch.optim``.

``weight_decay_groups`` splits a model's parameters into those weight decay should shrink and
those it should leave alone (biases and normalisation layers), as fastai does by default.

``get_optimizer`` takes PyTorch's defaults and accepts Keras's argument names.

PyTorch and Keras disagree on defaults; PyTorch's apply here:

- SGD: lr 1e-3 (Keras: learning_rate 1e-2).
- RMSprop: lr 1e-2, alpha 0.99, eps 1e-8 (Keras: learning_rate 1e-3, rho 0.9, epsilon 1e-7).
- Adam: eps 1e-8 (Keras: epsilon 1e-7).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch

from labpkg.core.checks import check_lr

__all__ = [
    "BY_HAND",
    "NORM_LAYERS",
    "OPTIMIZERS",
    "SGD",
    "Adam",
    "AdamW",
    "RMSprop",
    "RuleOptimizer",
    "get_optimizer",
    "weight_decay_groups",
]

OPTIMIZERS = {
    "sgd": torch.optim.SGD,
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "rmsprop": torch.optim.RMSprop,
}
# Keras names -> PyTorch names
_ALIASES = {"learning_rate": "lr", "rho": "alpha", "epsilon": "eps"}


def get_optimizer(
    name: str, params: Iterable, lr: float | None = None, **kwargs: Any
) -> torch.optim.Optimizer:
    """Build an optimizer by name.

    Args:
        name: ``"sgd"``, ``"adam"``, ``"adamw"`` or ``"rmsprop"`` (any case).
        params: the model's parameters (``model.parameters()``).
        lr: learning rate; None keeps PyTorch's default for that optimizer.
        **kwargs: passed on; Keras spellings ``learning_rate``, ``rho`` (RMSprop) and
            ``epsilon`` are translated to ``lr``, ``alpha`` and ``eps``.

    Returns:
        A ``torch.optim.Optimizer``.

    Example:
        >>> opt = get_optimizer("rmsprop", [torch.zeros(1, requires_grad=True)], rho=0.9)
        >>> opt.defaults["alpha"], opt.defaults["lr"]
        (0.9, 0.01)
    """
    key = name.lower() if isinstance(name, str) else name
    if key not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; choose one of {sorted(OPTIMIZERS)}")
    for keras_name, torch_name in _ALIASES.items():
        if keras_name in kwargs:
            if torch_name in kwargs or (torch_name == "lr" and lr is not None):
                raise ValueError(f"pass either {keras_name!r} or {torch_name!r}, not both")
            kwargs[torch_name] = kwargs.pop(keras_name)
    if lr is not None:
        kwargs["lr"] = lr
    if "lr" in kwargs:
        kwargs["lr"] = check_lr(kwargs["lr"])  # also a NumPy number: checkpoints hold floats
    return OPTIMIZERS[key](params, **kwargs)


#: Layers whose parameters are a scale and a shift per channel (fastai's ``norm_types``, plus
#: GroupNorm): decaying them would pull the scale towards 0, not make the model simpler.
NORM_LAYERS = (
    torch.nn.modules.batchnorm._BatchNorm,  # BatchNorm1d/2d/3d and SyncBatchNorm
    torch.nn.modules.instancenorm._InstanceNorm,
    torch.nn.LayerNorm,
    torch.nn.GroupNorm,
)


def weight_decay_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Parameter groups with weight decay on the weights only, not on biases and norm layers.

    fastai's ``Learner`` does the same by default (``wd_bn_bias=False``): a bias or a
    normalisation layer's scale and shift are a few numbers per channel that set an offset
    or a size, and pulling them towards 0 does not make the model simpler.

    Args:
        model: the model whose parameters the optimizer will train.
        weight_decay: the decay of the first group (weights of convolutions and linear
            layers); the second group's is 0.

    Returns:
        A list of parameter-group dicts for any ``torch.optim`` optimizer (empty groups left
        out); each parameter appears exactly once.

    Example:
        >>> model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
        >>> groups = weight_decay_groups(model, 1e-2)
        >>> [(len(g["params"]), g["weight_decay"]) for g in groups]  # conv weight | its bias, BN
        [(1, 0.01), (3, 0.0)]
        >>> torch.optim.AdamW(groups, lr=1e-3).param_groups[1]["weight_decay"]
        0.0
    """
    decay, no_decay, seen = [], [], set()
    for module in model.modules():
        for name, w in module.named_parameters(recurse=False):
            if id(w) in seen:
                continue  # a weight shared by two layers: an optimizer refuses duplicates
            seen.add(id(w))
            if isinstance(module, NORM_LAYERS) or name == "bias":
                no_decay.append(w)
            else:
                decay.append(w)
    groups = [
        {"params": decay, "weight_decay": float(weight_decay)},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return [g for g in groups if g["params"]]


def _check_options(options: dict[str, Any]) -> None:
    """Refuse the options ``torch.optim`` refuses (torch/optim/sgd.py, adam.py, rmsprop.py),
    which would make the weights NaN, with the fix in the message; NaN is refused too."""
    check_lr(options["lr"])
    for name in ("momentum", "weight_decay", "eps"):
        if name in options and not options[name] >= 0:
            raise ValueError(f"{name} must be >= 0, got {options[name]}")
    # torch refuses alpha < 0 only; above 1 the mean of g² turns negative and √ gives NaN
    if "alpha" in options and not 0 <= options["alpha"] <= 1:
        raise ValueError(
            f"alpha must be in [0, 1] (the weight of the past), got {options['alpha']}"
        )
    betas = options.get("betas", (0.0, 0.0))
    if not (
        isinstance(betas, (tuple, list)) and len(betas) == 2 and all(0 <= b < 1 for b in betas)
    ):
        raise ValueError(
            f"betas must be two numbers in [0, 1), e.g. (0.9, 0.999), got {betas}: at 1 the "
            "bias correction 1 - beta^t divides by 0"
        )


# ---------------------------------------------------------------- the update rules, written out
# Each class below is what its torch.optim namesake does in ``step()``, in a few lines of
# tensor code (no foreach/fused kernels, no rarely used options). Notation: w a weight tensor,
# g its gradient, t the update count (1, 2, ...), lr the learning rate. The in-place forms
# (``w.add_(g, alpha=-lr)`` is w − lr·g) round exactly as torch.optim does: the chapter checks
# the results are bit-identical, so any change to a rule shows.


class RuleOptimizer(torch.optim.Optimizer):
    """A ``torch.optim.Optimizer`` whose ``step`` applies ``update`` to every weight with a
    gradient. ``torch.optim.Optimizer`` keeps the parameter groups (so schedulers can change
    ``lr``), the per-weight ``state`` and ``state_dict``; a subclass writes only ``update``."""

    #: True if ``update`` works on sparse gradients (``nn.Embedding(sparse=True)``) as well.
    supports_sparse = False
    #: the names of the per-weight state this rule keeps (``load_state_dict`` checks them)
    state_names: tuple[str, ...] = ()

    def __init__(self, params: Iterable, **defaults: Any) -> None:
        _check_options(defaults)
        super().__init__(params, defaults)

    @torch.no_grad()  # the update itself is not part of any gradient
    def step(self, closure: Any = None) -> None:
        if closure is not None:
            raise ValueError("closures are not supported here; call loss.backward() first")
        if not self.supports_sparse:
            self._check_dense()  # before any weight moves: never half an update
        for group in self.param_groups:
            for w in group["params"]:
                if w.grad is not None:
                    self.update(w, w.grad, self.state[w], group)

    def _check_dense(self) -> None:
        # is_sparse is known on the host: no device read
        if any(w.grad is not None and w.grad.is_sparse for group in self.param_groups
               for w in group["params"]):  # fmt: skip
            raise RuntimeError(
                f"{type(self).__name__} does not support sparse gradients (an "
                "nn.Embedding(sparse=True) makes them): build the layer with sparse=False, "
                "or train it with torch.optim.SparseAdam"
            )

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """``torch.optim.Optimizer.load_state_dict``, refusing another rule's state.

        torch's optimizers keep their state under other names (``momentum_buffer``,
        ``exp_avg``): loaded as they are, a labpkg optimizer would not find its own and start
        afresh (momentum lost) or fail at the first step. Refused before anything changes.
        """
        for index, state in state_dict["state"].items():
            foreign = sorted(set(state) - set(self.state_names))
            if foreign:
                name = type(self).__name__
                raise ValueError(
                    f"{name}.load_state_dict: the state of parameter {index} holds {foreign}, "
                    f"which labpkg.optim.{name} does not keep (it keeps "
                    f"{list(self.state_names)}): it was saved by another optimizer class, such "
                    f"as torch.optim.{name}. Load a state saved by labpkg.optim.{name}, or "
                    "start this optimizer afresh"
                )
        super().load_state_dict(state_dict)

    def update(self, w: torch.Tensor, g: torch.Tensor, state: dict, group: dict) -> None:
        """Change weight ``w`` in place from its gradient ``g``, its ``state`` (kept between
        updates) and its parameter ``group`` (lr and the options)."""
        raise NotImplementedError


class SGD(RuleOptimizer):
    """Stochastic gradient descent, with optional momentum and L2 weight decay.

    Update: g ← g + λ·w (weight decay λ); with momentum μ, v ← μ·v + g (v = g at the first
    update), g ← v; then w ← w − lr·g.

    Example:
        >>> w = torch.tensor([1.0], requires_grad=True); w.grad = torch.tensor([0.5])
        >>> SGD([w], lr=0.1).step(); w
        tensor([0.9500], requires_grad=True)
    """

    supports_sparse = True  # plain and momentum steps take a sparse g, as in torch's SGD
    state_names = ("velocity",)

    def __init__(self, params: Iterable, lr: float = 1e-3, momentum: float = 0.0,
                 weight_decay: float = 0.0) -> None:  # fmt: skip
        super().__init__(params, lr=lr, momentum=momentum, weight_decay=weight_decay)

    def update(self, w, g, state, group):
        if group["weight_decay"]:
            g = g.add(w, alpha=group["weight_decay"])  # g + λ·w
        if group["momentum"]:
            if "velocity" not in state:
                state["velocity"] = g.clone()  # the first update: no history to blend yet
            else:
                state["velocity"].mul_(group["momentum"]).add_(g)  # μ·v + g
            g = state["velocity"]
        w.add_(g, alpha=-group["lr"])  # w − lr·g


class RMSprop(RuleOptimizer):
    """RMSprop: divide each weight's step by the root of its recent mean squared gradient.

    Update: s ← α·s + (1 − α)·g² (s = 0 before the first update); w ← w − lr·g / (√s + ε).

    Example:
        >>> w = torch.tensor([1.0], requires_grad=True); w.grad = torch.tensor([0.5])
        >>> RMSprop([w], lr=0.01).step(); round(w.item(), 4)  # 1 − 0.01·0.5/(0.1·0.5)
        0.9
    """

    state_names = ("square_avg",)

    def __init__(self, params: Iterable, lr: float = 1e-2, alpha: float = 0.99,
                 eps: float = 1e-8, weight_decay: float = 0.0) -> None:  # fmt: skip
        super().__init__(params, lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay)

    def update(self, w, g, state, group):
        if group["weight_decay"]:
            g = g.add(w, alpha=group["weight_decay"])  # g + λ·w
        s = state.setdefault("square_avg", torch.zeros_like(w))
        s.mul_(group["alpha"]).addcmul_(g, g, value=1 - group["alpha"])  # α·s + (1 − α)·g²
        w.addcdiv_(g, s.sqrt().add_(group["eps"]), value=-group["lr"])  # w − lr·g / (√s + ε)


class Adam(RuleOptimizer):
    """Adam: momentum (m) and RMSprop (v) together, both corrected for starting at zero.

    Update at step t: g ← g + λ·w (L2 weight decay λ, added to the gradient);
    m ← β₁·m + (1 − β₁)·g; v ← β₂·v + (1 − β₂)·g²;
    m̂ = m / (1 − β₁ᵗ); v̂ = v / (1 − β₂ᵗ); w ← w − lr·m̂ / (√v̂ + ε).

    Example:
        >>> w = torch.tensor([1.0], requires_grad=True); w.grad = torch.tensor([0.5])
        >>> Adam([w], lr=0.1).step(); round(w.item(), 4)  # the first step is lr·sign(g)
        0.9
    """

    decoupled = False  # AdamW: True
    state_names = ("step", "m", "v")

    def __init__(
        self,
        params: Iterable,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)

    def update(self, w, g, state, group):
        (beta1, beta2), lr, decay = group["betas"], group["lr"], group["weight_decay"]
        if self.decoupled:
            w.mul_(1 - lr * decay)  # AdamW: shrink the weight itself, outside the gradient
        elif decay:
            g = g.add(w, alpha=decay)  # Adam: decay enters the gradient, so v rescales it too
        if not state:
            state.update(step=0, m=torch.zeros_like(w), v=torch.zeros_like(w))
        state["step"] += 1
        t, m, v = state["step"], state["m"], state["v"]
        m.lerp_(g, 1 - beta1)  # m + (1 − β₁)·(g − m), which is β₁·m + (1 − β₁)·g
        v.mul_(beta2).addcmul_(g, g, value=1 - beta2)  # β₂·v + (1 − β₂)·g²
        # w − lr·m̂ / (√v̂ + ε), with m̂ = m / (1 − β₁ᵗ) and v̂ = v / (1 − β₂ᵗ)
        denominator = (v.sqrt() / math.sqrt(1 - beta2**t)).add_(group["eps"])
        w.addcdiv_(m, denominator, value=-lr / (1 - beta1**t))


class AdamW(Adam):
    """Adam with *decoupled* weight decay: w ← w·(1 − lr·λ), then Adam's update without λ.

    With Adam's L2 decay the term λ·w is divided by √v̂ like the gradient: weights with large
    gradients are hardly decayed. AdamW shrinks every weight by the same factor.

    Example:
        >>> w = torch.tensor([1.0], requires_grad=True); w.grad = torch.tensor([0.5])
        >>> AdamW([w], lr=0.1, weight_decay=0.5).step(); round(w.item(), 4)  # 1·0.95 − 0.1
        0.85
    """

    decoupled = True

    def __init__(self, params: Iterable, lr: float = 1e-3, weight_decay: float = 1e-2,
                 **options: Any) -> None:  # fmt: skip
        # only the default decay differs from Adam's (torch.optim.AdamW's is 1e-2)
        super().__init__(params, lr=lr, weight_decay=weight_decay, **options)


#: The hand-written optimizers by their torch.optim name.
BY_HAND = {"SGD": SGD, "RMSprop": RMSprop, "Adam": Adam, "AdamW": AdamW}
