"""The hand-written optimizers in labpkg.optim do exactly what torch.optim does."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from helpers import tiny_data, tiny_model

import labpkg
from labpkg.nn import optim

CASES = [
    ("SGD", {"lr": 0.1}),
    ("SGD", {"lr": 0.1, "momentum": 0.9}),
    ("SGD", {"lr": 0.05, "momentum": 0.5, "weight_decay": 1e-2}),
    ("RMSprop", {"lr": 1e-3}),
    ("RMSprop", {"lr": 1e-3, "alpha": 0.9, "eps": 1e-6, "weight_decay": 1e-2}),
    ("Adam", {"lr": 1e-3}),
    ("Adam", {"lr": 3e-3, "betas": (0.8, 0.99), "weight_decay": 1e-2}),
    ("AdamW", {"lr": 1e-3}),
    ("AdamW", {"lr": 3e-3, "weight_decay": 0.3}),
]


def _train(model, optimizer, steps: int = 6) -> None:
    data = tiny_data(3 * steps)
    for i in range(steps):
        x, y = data[3 * i : 3 * i + 3]
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()


@pytest.mark.parametrize(("name", "options"), CASES)
def test_each_hand_written_optimizer_gives_torch_optims_weights_bit_for_bit(name, options):
    ours, theirs = tiny_model(), tiny_model()
    _train(ours, optim.BY_HAND[name](ours.parameters(), **options))
    _train(theirs, getattr(torch.optim, name)(theirs.parameters(), **options))
    for a, b in zip(ours.parameters(), theirs.parameters(), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("name", sorted(optim.BY_HAND))
def test_the_defaults_are_torch_optims_defaults(name):
    ours = optim.BY_HAND[name]([torch.zeros(1, requires_grad=True)]).defaults
    theirs = getattr(torch.optim, name)([torch.zeros(1, requires_grad=True)]).defaults
    assert ours == {k: theirs[k] for k in ours}


def test_a_changed_rule_is_caught():
    """A rule with Adam's bias correction left out: the comparison above must see it."""

    class Uncorrected(optim.Adam):
        def update(self, w, g, state, group):
            beta1, beta2 = group["betas"]
            m = state.setdefault("m", torch.zeros_like(w))
            v = state.setdefault("v", torch.zeros_like(w))
            m.lerp_(g, 1 - beta1)
            v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
            w.addcdiv_(m, v.sqrt().add_(group["eps"]), value=-group["lr"])

    ours, theirs = tiny_model(), tiny_model()
    _train(ours, Uncorrected(ours.parameters(), lr=1e-3))
    _train(theirs, torch.optim.Adam(theirs.parameters(), lr=1e-3))
    pairs = zip(ours.parameters(), theirs.parameters(), strict=True)
    assert not all(torch.equal(a, b) for a, b in pairs)


def test_a_scheduler_drives_a_hand_written_optimizer_and_its_state_round_trips():
    model = tiny_model()
    opt = optim.Adam(model.parameters(), lr=1e-2)
    scheduler = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    for _ in range(3):
        _train(model, opt, steps=1)
        scheduler.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(5e-3)
    again = optim.Adam(copy.deepcopy(model).parameters(), lr=1e-2)
    again.load_state_dict(copy.deepcopy(opt.state_dict()))
    assert again.state_dict()["state"][0]["step"] == 3


@pytest.mark.parametrize(
    ("options", "message"),
    [({"lr": -0.1}, "lr must be a finite number >= 0"), ({"lr": float("inf")}, "lr must be"),
     ({"lr": 0.1, "weight_decay": -1.0}, "weight_decay must be >= 0")],
)  # fmt: skip
def test_bad_options_name_the_argument(options, message):
    with pytest.raises(ValueError, match=message):
        optim.SGD([torch.zeros(1, requires_grad=True)], **options)


def test_a_learning_rate_of_0_is_accepted_everywhere_as_torch_optim_accepts_it():
    # one rule (labpkg.core.checks.check_lr): a schedule may start or end at 0
    weight = torch.zeros(1, requires_grad=True)
    assert labpkg.get_optimizer("sgd", [weight], lr=0.0).defaults["lr"] == 0.0
    assert optim.SGD([weight], lr=0.0).defaults["lr"] == 0.0
    assert torch.optim.SGD([weight], lr=0.0).defaults["lr"] == 0.0  # torch's own rule


# ---------------------------------- options torch.optim refuses are refused, before any update
@pytest.mark.parametrize(
    ("name", "options", "message"),
    [("SGD", {"momentum": -1.0}, "momentum must be >= 0"),
     ("SGD", {"weight_decay": math.nan}, "weight_decay must be >= 0"),
     ("Adam", {"betas": (-0.1, 0.999)}, r"betas must be two numbers in \[0, 1\)"),
     ("Adam", {"betas": (1.0, 0.999)}, "betas must be"), ("AdamW", {"betas": (0.9, 1.0)}, "betas"),
     ("Adam", {"eps": -1e-8}, "eps must be >= 0"), ("RMSprop", {"eps": -1.0}, "eps must be"),
     ("RMSprop", {"alpha": -0.5}, r"alpha must be in \[0, 1\]"),
     ("RMSprop", {"alpha": 1.5}, "alpha must be")],
)  # fmt: skip
def test_options_that_would_make_the_weights_nan_are_refused_naming_the_option(
    name, options, message
):
    with pytest.raises(ValueError, match=message):
        optim.BY_HAND[name]([torch.zeros(1, requires_grad=True)], lr=0.1, **options)


@pytest.mark.parametrize("name", ["Adam", "AdamW", "RMSprop"])
def test_sparse_gradients_are_refused_before_any_weight_moves(name):
    dense, embedding = torch.nn.Linear(2, 1), torch.nn.Embedding(5, 2, sparse=True)
    opt = optim.BY_HAND[name]([*dense.parameters(), *embedding.parameters()], lr=0.1)
    (dense(embedding(torch.tensor([1]))).sum()).backward()
    before = copy.deepcopy(dense.state_dict())
    with pytest.raises(RuntimeError, match=f"{name} does not support sparse gradients"):
        opt.step()
    assert all(torch.equal(before[k], v) for k, v in dense.state_dict().items())


def test_sgd_takes_sparse_gradients_as_torch_optim_does():
    weights = []
    for sgd in (optim.SGD, torch.optim.SGD):
        torch.manual_seed(0)
        embedding = torch.nn.Embedding(5, 2, sparse=True)
        opt = sgd(embedding.parameters(), lr=0.1, momentum=0.9)
        for step in range(3):
            opt.zero_grad()
            embedding(torch.tensor([1, step])).sum().backward()
            opt.step()
        weights.append(embedding.weight.detach())
    assert torch.equal(*weights)


def test_closures_are_refused_with_the_fix():
    opt = optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    with pytest.raises(ValueError, match="loss.backward"):
        opt.step(lambda: 0.0)


def test_weight_decay_groups_leave_biases_and_norm_layers_undecayed():
    model = tiny_model(batch_norm=True)
    decay, no_decay = optim.weight_decay_groups(model, 0.1)
    assert (decay["weight_decay"], no_decay["weight_decay"]) == (0.1, 0.0)
    ids = [id(w) for g in (decay, no_decay) for w in g["params"]]
    assert sorted(ids) == sorted(id(w) for w in model.parameters())  # each exactly once
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    norm_ids = {id(w) for m in norms for w in m.parameters()}
    bias_ids = {id(w) for name, w in model.named_parameters() if name.endswith("bias")}
    assert norms and {id(w) for w in no_decay["params"]} == norm_ids | bias_ids
    assert all(w.dim() == 4 for w in decay["params"])  # convolution kernels only


def test_weight_decay_groups_shrink_only_the_weights_under_adamw():
    model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.LayerNorm(2))
    before = copy.deepcopy(model.state_dict())
    opt = torch.optim.AdamW(optim.weight_decay_groups(model, 0.5), lr=0.1)
    for w in model.parameters():
        w.grad = torch.zeros_like(w)  # no gradient: only the decay moves a weight
    opt.step()
    after = model.state_dict()
    assert torch.allclose(after["0.weight"], before["0.weight"] * (1 - 0.1 * 0.5))
    for key in ("0.bias", "1.weight", "1.bias"):
        assert torch.equal(after[key], before[key])


def test_weight_decay_groups_list_a_shared_weight_once_and_drop_empty_groups():
    layer = torch.nn.Linear(2, 2, bias=False)
    groups = optim.weight_decay_groups(torch.nn.Sequential(layer, layer), 1e-2)
    assert [len(g["params"]) for g in groups] == [1]


def test_the_recipe_decays_weights_only_and_one_cycle_moves_beta1():
    from labpkg.recipes import Recipe, build_recipe

    small = Recipe(samples_per_epoch=16, val_samples=8, image_size=32, epochs=5)
    groups = build_recipe(small).trainer.optimizer.param_groups
    assert [g["weight_decay"] for g in groups] == [small.weight_decay, 0.0]
    assert groups[0]["betas"][0] == 0.95  # OneCycleLR's max_momentum at the first update
    everything = build_recipe(Recipe(**{**small.__dict__, "decay_norm_and_bias": True}))
    assert [g["weight_decay"] for g in everything.trainer.optimizer.param_groups] == [1e-4]
