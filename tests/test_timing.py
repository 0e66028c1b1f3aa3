"""The timing tables that compare settings (float32, autocast, channels_last) and refuse a
disturbed measurement: ``labpkg.timing``."""

from __future__ import annotations

import pytest
import torch

import labpkg
from labpkg.core.timing import TimingTable, UnsteadyTiming, time_steps

CPU = torch.device("cpu")


def _fake_clock(monkeypatch):
    """A clock that only moves when a fake step says how long it took."""
    now = [0.0]
    monkeypatch.setattr(labpkg.timing.time, "perf_counter", lambda: now[0])

    def step(durations_ms):
        calls = iter(durations_ms)

        def run():
            now[0] += next(calls) / 1000

        return run

    return step


def test_a_steady_table_gives_medians_and_paired_speedups(monkeypatch):
    step = _fake_clock(monkeypatch)
    steps = {  # warm-up first, then one time per round
        ("float32", 8): step([99, 60, 62, 61]),
        ("float32", 32): step([99, 240, 250, 244]),
        ("autocast", 8): step([99, 30, 32, 30]),
        ("autocast", 32): step([99, 120, 125, 122]),
    }
    table = time_steps(steps, "float32", CPU, rounds=3)
    assert table.ms("float32", 32) == pytest.approx(244)
    assert table.speedup("autocast", 32) == pytest.approx(2.0)  # 240/120, 250/125, 244/122
    assert table.spread("float32", 8) == pytest.approx(61 / 60)  # the median over the fastest
    assert table.problems() == []
    assert "(2.00×)" in str(table) and "batch 32" in str(table)


def test_the_issues_outlier_is_refused_not_printed():
    # float32 at batch 32 once took 1633.9 ms against 63.4 ms at batch 8: 26× the time for
    # 4× the work, and the table printed a speed-up of 18.61×
    times = {
        ("float32", 8): (63.4, 63.0, 64.1),
        ("float32", 32): (1633.9, 1630.2, 1641.0),
        ("both", 8): (32.2, 32.0, 32.5),
        ("both", 32): (87.8, 88.1, 87.5),
    }
    problems = TimingTable(times, "float32").problems()
    assert problems == ["float32: batch 32 took 25.77× the time of batch 8"]


def test_one_slow_round_is_outvoted_and_a_slow_majority_measured_again(monkeypatch):
    step = _fake_clock(monkeypatch)
    # one burst of slowdown: the median ignores it, and the table stands
    steps = {("float32", 8): step([99, 60, 200, 61]), ("amp", 8): step([9, 30, 30, 30])}
    table = time_steps(steps, "float32", CPU, rounds=3)
    assert table.ms("float32", 8) == pytest.approx(61) and table.speedup("amp", 8) == pytest.approx(
        61 / 30
    )
    # two slow rounds of three in the first attempt: measured again, the second kept
    slow_then_steady = [99, 60, 200, 190, 60, 61, 62]
    steps = {("float32", 8): step(slow_then_steady), ("amp", 8): step([9] + [30] * 6)}
    table = time_steps(steps, "float32", CPU, rounds=3)
    assert table.times["float32", 8] == pytest.approx((60, 61, 62))


def test_a_table_disturbed_in_every_attempt_is_refused(monkeypatch):
    step = _fake_clock(monkeypatch)
    steps = {("float32", 8): step([99] + [60, 200, 190] * 3), ("amp", 8): step([9] + [30] * 9)}
    with pytest.raises(UnsteadyTiming, match=r"float32 at batch 8: rounds disagree \(60.0"):
        time_steps(steps, "float32", CPU, rounds=3, attempts=3)


def test_the_rounds_rotate_so_no_setting_always_runs_first(monkeypatch):
    order = []
    steps = {key: (lambda key=key: order.append(key)) for key in ["a", "b", "c"]}
    steps = {(key, 8): fn for key, fn in steps.items()}
    monkeypatch.setattr(labpkg.timing.time, "perf_counter", lambda: 1.0)
    monkeypatch.setattr(labpkg.timing.TimingTable, "problems", lambda self, s: [])
    time_steps(steps, "a", CPU, rounds=3)
    assert order == ["a", "b", "c"] + ["a", "b", "c", "b", "c", "a", "c", "a", "b"]


def test_compare_settings_times_a_real_step_of_each_setting(monkeypatch):
    # a unit test on a shared machine checks the plumbing, not the machine's steadiness
    monkeypatch.setattr(labpkg.timing.TimingTable, "problems", lambda self, s: [])
    settings = {
        "float32": {},
        "both": {"amp": True, "channels_last": True},
    }
    table = labpkg.timing.compare_settings(
        lambda: labpkg.UNet(labpkg.UNetConfig(base_width=4, depth=2)),
        settings,
        batch_sizes=(1, 2),
        device=CPU,
        image_size=16,
        rounds=1,
    )
    assert table.settings == list(settings) and table.batch_sizes == [1, 2]
    assert all(len(times) == 1 for times in table.times.values())


def test_a_training_step_trains_under_autocast_and_channels_last():
    torch.manual_seed(0)
    model = labpkg.UNet(labpkg.UNetConfig(base_width=4, depth=2))
    before = [p.detach().clone() for p in model.parameters()]
    step = labpkg.timing.training_step(model, 2, CPU, amp=True, channels_last=True, image_size=16)
    step()
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    assert next(model.parameters()).is_contiguous(memory_format=torch.channels_last)
    assert all(p.dtype == torch.float32 for p in model.parameters())


def test_the_module_loads_on_first_use_and_stays_out_of_the_star_import():
    assert "timing" not in labpkg.__all__
    assert "timing" in labpkg._LAZY_MODULES and labpkg.timing.__name__ == "labpkg.core.timing"
