"""Metrics: spec cases M1-M4, properties, and agreement with torchmetrics."""

from __future__ import annotations

import math

import pytest
import torch
from helpers import loader, tiny_data, tiny_model
from hypothesis import given, settings
from hypothesis import strategies as st

from labpkg.nn.metrics import (
    DiceCoefficient,
    MeanIoU,
    Metric,
    PixelAccuracy,
    SegmentationMetrics,
    confusion_matrix,
    dice_from_confusion,
    iou_from_confusion,
    pixel_accuracy_from_confusion,
)


def t(rows):
    return torch.tensor([rows])  # one image (1, H, W)


def test_m1_three_classes():
    cm = confusion_matrix(t([[0, 1], [2, 2]]), t([[0, 1], [1, 2]]), num_classes=3)
    torch.testing.assert_close(iou_from_confusion(cm), torch.tensor([1, 0.5, 0.5]).double())
    assert iou_from_confusion(cm).mean().item() == pytest.approx(0.6667, abs=1e-4)
    dice = dice_from_confusion(cm)
    torch.testing.assert_close(dice, torch.tensor([1, 2 / 3, 2 / 3]).double())
    assert dice.mean().item() == pytest.approx(0.7778, abs=1e-4)
    assert pixel_accuracy_from_confusion(cm).item() == 0.75
    recall = cm.diagonal().double() / cm.sum(1)
    assert recall.mean().item() == pytest.approx(0.8333, abs=1e-4)  # macro recall differs


def test_m2_absent_class_is_nan_and_left_out_of_the_mean():
    m = MeanIoU(num_classes=3, per_class=True)
    m.update(t([[0, 1], [1, 0]]), t([[0, 1], [1, 0]]))
    per_class = m.compute()
    assert per_class[:2].tolist() == [1.0, 1.0] and math.isnan(per_class[2])
    mean = MeanIoU(num_classes=3)
    mean.update(t([[0, 1], [1, 0]]), t([[0, 1], [1, 0]]))
    assert mean.compute().item() == 1.0  # counting the absent class as 0 would give 0.6667


def test_m3_dataset_level_is_not_the_mean_of_batches():
    a_pred, a_true = t([[0, 1], [0, 0]]), t([[1, 0], [0, 0]])
    b_pred = b_true = torch.ones(1, 2, 2, dtype=torch.long)
    iou = MeanIoU(num_classes=2, per_class=True)
    dice = DiceCoefficient(num_classes=2, per_class=True)
    for pred, true in ((a_pred, a_true), (b_pred, b_true)):
        iou.update(pred, true)
        dice.update(pred, true)
    assert iou.compute()[1].item() == pytest.approx(2 / 3)  # per-batch mean would be 0.5
    assert dice.compute()[1].item() == pytest.approx(0.8)  # per-batch mean would be 0.5
    assert iou.compute()[0].item() == pytest.approx(0.5)
    assert iou.compute().mean().item() == pytest.approx(0.5833, abs=1e-4)
    binary = MeanIoU(num_classes=2, mode="binary")
    for pred, true in ((a_pred, a_true), (b_pred, b_true)):
        binary.update(pred, true)
    assert binary.compute().item() == pytest.approx(2 / 3)  # binary mode: foreground IoU


def test_m4_ignore_index_drops_pixels():
    pred, true = t([[0, 0], [1, 0]]), t([[0, 255], [1, 1]])
    metrics = SegmentationMetrics(num_classes=2, ignore_index=255, per_class=True)
    metrics.update(pred, true)
    out = metrics.scores()
    assert out["pixel_accuracy"].item() == pytest.approx(2 / 3)
    torch.testing.assert_close(out["mean_iou"], torch.tensor([0.5, 0.5]).double())
    torch.testing.assert_close(out["dice"], torch.tensor([2 / 3, 2 / 3]).double())
    before = metrics.confmat.clone()
    metrics.update(t([[1, 0], [0, 1]]), torch.full((1, 2, 2), 255))
    assert torch.equal(metrics.confmat, before)  # an all-ignored batch changes nothing


def test_binary_mode_thresholds_logits_after_a_sigmoid():
    logits = torch.tensor([[[[3.0, -3.0], [0.1, -0.1]]]])  # (1, 1, 2, 2)
    true = torch.tensor([[[1, 0], [1, 1]]])
    cm = confusion_matrix(logits, true, num_classes=2, mode="binary")
    assert cm.tolist() == [[1, 0], [1, 2]]
    cm = confusion_matrix(logits, true, num_classes=2, mode="binary", threshold=0.9)
    assert cm.tolist() == [[1, 0], [2, 1]]


def test_scores_are_argmaxed_over_the_class_dimension():
    scores = torch.zeros(1, 3, 1, 2)
    scores[0, 2, 0, 0] = scores[0, 1, 0, 1] = 1.0
    assert confusion_matrix(scores, t([[2, 0]]), 3).tolist() == [[0, 1, 0], [0, 0, 0], [0, 0, 1]]


def test_empty_metric_is_nan_not_an_error():
    assert math.isnan(MeanIoU(3).compute().item())
    assert math.isnan(PixelAccuracy(3).compute().item())


def test_include_background_false_averages_foreground_only():
    m = MeanIoU(num_classes=3, include_background=False)
    m.update(t([[0, 1], [2, 2]]), t([[0, 1], [1, 2]]))
    assert m.compute().item() == pytest.approx(0.5)
    assert set(MeanIoU(3, per_class=True, include_background=False).results()) == {
        "mean_iou",
        "mean_iou_1",
        "mean_iou_2",
    }


@pytest.mark.parametrize(
    ("pred", "target", "kwargs", "error", "match"),
    [
        (t([[0, 1]]), t([[0.0, 1.0]]), {}, TypeError, "int64"),
        (
            torch.zeros(1, 3, 1, 2),
            torch.zeros(1, 1, 1, 2, dtype=torch.long),
            {},
            ValueError,
            r"\(N, 1, H, W\)",
        ),
        (t([[0, 1]]), t([[0, 3]]), {}, ValueError, "outside"),
        (t([[0, 1]]), t([[0, 1, 1]]), {}, ValueError, "differ in shape"),
        (t([[0, 1]]), t([[0, 1]]), {"num_classes": 1}, ValueError, "num_classes"),
        (t([[0, 3]]), t([[0, 0]]), {}, ValueError, "preds holds labels outside"),
        (t([[0, 0]]), t([[0, 3]]), {}, ValueError, "target holds labels outside"),
        (t([[0, 0]]), t([[0, -1]]), {}, ValueError, "target holds labels outside"),
        (torch.zeros(1, 2, 1, 2), t([[0, 1]]), {}, ValueError, "channels"),
    ],
)
def test_bad_input_gets_a_clear_error(pred, target, kwargs, error, match):
    args = {"num_classes": 3} | kwargs
    with pytest.raises(error, match=match):
        confusion_matrix(pred, target, **args)


def test_state_stays_on_the_input_device_and_sync_sums_it():
    m = MeanIoU(3)
    m.update(t([[0, 1]]), t([[0, 1]]))
    assert m.confmat.device == torch.device("cpu") and m.confmat.dtype == torch.int64
    m.sync(lambda tensor: tensor.mul_(2))  # a stand-in all-reduce over 2 equal processes
    assert int(m.confmat.sum()) == 4


# ------------------------------- every compute is one tensor; the Metric protocol is complete
def test_segmentation_metrics_give_their_three_scores_by_scores_not_compute():
    m = SegmentationMetrics(3)
    m.update(t([[0, 1], [2, 2]]), t([[0, 1], [1, 2]]))
    assert sorted(m.scores()) == ["dice", "mean_iou", "pixel_accuracy"]
    assert all(isinstance(v, torch.Tensor) for v in m.scores().values())
    with pytest.raises(TypeError, match="scores"):
        m.compute()
    for one in (PixelAccuracy(3), MeanIoU(3), DiceCoefficient(3)):
        one.update(t([[0, 1], [2, 2]]), t([[0, 1], [1, 2]]))
        assert isinstance(one.compute(), torch.Tensor)


@pytest.mark.parametrize(
    "metric",
    [
        MeanIoU(4, per_class=True),
        SegmentationMetrics(3),
        DiceCoefficient(3, include_background=False, per_class=True),
    ],
)
def test_every_metric_declares_its_log_keys_and_direction_as_the_protocol_asks(metric):
    assert isinstance(metric, Metric)  # state_dict, load_state_dict, log_keys, higher_is_better
    declared = metric.log_keys()
    metric.update(torch.randn(2, metric.num_classes, 4, 4), torch.randint(0, 2, (2, 4, 4)))
    assert declared == list(metric.results())
    assert metric.higher_is_better is True


# ------------------------------------- state_dict is a snapshot, loaded only into its own kind
def test_state_dict_is_a_snapshot_that_later_updates_and_other_metrics_leave_alone():
    m = MeanIoU(3)
    m.update(t([[0, 1]]), t([[0, 1]]))
    snapshot = m.state_dict()
    m.update(t([[2, 2]]), t([[2, 2]]))
    assert int(snapshot["counts"].sum()) == 2  # the two pixels of the first update only
    a, b = MeanIoU(3), MeanIoU(3)
    a.load_state_dict(snapshot)
    b.load_state_dict(snapshot)
    a.update(t([[0, 0]]), t([[0, 0]]))
    assert int(b.confmat.sum()) == 2 and int(snapshot["counts"].sum()) == 2


def test_counts_of_another_number_of_classes_are_refused_naming_num_classes():
    four = MeanIoU(4)
    four.update(t([[0, 3]]), t([[0, 3]]))
    three = MeanIoU(3)
    with pytest.raises(ValueError, match=r"num_classes=3\) cannot load .* num_classes=4"):
        three.load_state_dict(four.state_dict())
    assert three.counts is None  # unchanged


labels = st.integers(0, 3)


@st.composite
def dataset(draw):
    n = draw(st.integers(1, 6))
    h, w = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    gen = torch.Generator().manual_seed(draw(st.integers(0, 10_000)))
    pred = torch.randint(0, 4, (n, h, w), generator=gen)
    true = torch.randint(0, 4, (n, h, w), generator=gen)
    cuts = sorted(draw(st.lists(st.integers(1, n), max_size=3)))
    return pred, true, cuts


@settings(max_examples=60, deadline=None)
@given(dataset())
def test_scores_lie_in_0_1_and_do_not_depend_on_batching(data):
    pred, true, cuts = data
    whole, split = SegmentationMetrics(4, per_class=True), SegmentationMetrics(4, per_class=True)
    whole.update(pred, true)
    for a, b in zip([0, *cuts], [*cuts, len(pred)], strict=True):
        if b > a:
            split.update(pred[a:b], true[a:b])
    assert torch.equal(whole.confmat, split.confmat)
    for name, value in whole.scores().items():
        finite = value[~value.isnan()]
        assert ((finite >= 0) & (finite <= 1)).all(), name


@settings(max_examples=60, deadline=None)
@given(dataset())
def test_dice_is_at_least_iou_with_equality_only_at_0_and_1(data):
    pred, true, _ = data
    cm = confusion_matrix(pred, true, 4)
    iou, dice = iou_from_confusion(cm), dice_from_confusion(cm)
    ok = ~iou.isnan()
    assert (dice[ok] >= iou[ok] - 1e-12).all()
    equal = (dice[ok] - iou[ok]).abs() < 1e-12
    assert ((iou[ok][equal] == 0) | (iou[ok][equal] == 1)).all()


@settings(max_examples=30, deadline=None)
@given(dataset())
def test_perfect_prediction_scores_one(data):
    _, true, _ = data
    m = SegmentationMetrics(4)
    m.update(true, true)
    assert m.results() == {"pixel_accuracy": 1.0, "mean_iou": 1.0, "dice": 1.0}


@pytest.mark.parametrize("seed", range(5))
def test_agrees_with_torchmetrics_where_semantics_coincide(seed):
    from torchmetrics.classification import (
        MulticlassAccuracy,
        MulticlassF1Score,
        MulticlassJaccardIndex,
    )

    gen = torch.Generator().manual_seed(seed)
    scores = torch.randn(4, 5, 16, 16, generator=gen)
    true = torch.randint(0, 5, (4, 16, 16), generator=gen)
    true[true == 4] = 0  # class 4 never in the target ...
    scores[:, 4] -= 100  # ... and never predicted: absent
    true[0, :2] = 255
    ours = SegmentationMetrics(5, ignore_index=255, per_class=True)
    ours.update(scores, true)
    out = ours.scores()
    # torchmetrics' per-class values give absent classes 0, so compare on classes that occur
    jaccard = MulticlassJaccardIndex(num_classes=5, average=None, ignore_index=255)
    f1 = MulticlassF1Score(num_classes=5, average=None, multidim_average="global", ignore_index=255)
    accuracy = MulticlassAccuracy(num_classes=5, average="micro", ignore_index=255)
    present = slice(0, 4)
    torch.testing.assert_close(
        out["mean_iou"][present].float(), jaccard(scores, true)[present], atol=1e-6, rtol=0
    )
    torch.testing.assert_close(
        out["dice"][present].float(), f1(scores, true)[present], atol=1e-6, rtol=0
    )
    assert math.isnan(out["mean_iou"][4]) and math.isnan(out["dice"][4])
    assert out["pixel_accuracy"].item() == pytest.approx(accuracy(scores, true).item())


def test_chapter_7_absent_class_sentence_matches_torchmetrics():
    """The metrics chapter: torchmetrics' macro mean leaves an absent class out, as labpkg does;
    ``average=None`` shows it as 0 where labpkg shows NaN."""
    from torchmetrics.classification import MulticlassJaccardIndex

    pred = true = torch.tensor([[[0, 1], [1, 0]]])  # class 2 neither true nor predicted
    ours = MeanIoU(3, per_class=True)
    ours.update(pred, true)
    macro = MulticlassJaccardIndex(num_classes=3)(pred, true)
    per_class = MulticlassJaccardIndex(num_classes=3, average=None)(pred, true)
    mean = MeanIoU(3)
    mean.update(pred, true)
    assert macro.item() == mean.compute().item() == 1.0  # not (1 + 1 + 0) / 3
    assert per_class.tolist() == [1.0, 1.0, 0.0] and math.isnan(ours.compute()[2])


@pytest.mark.parametrize("reads_free", [True, False], ids=["cpu", "as-on-a-gpu"])
def test_unchecked_updates_still_refuse_out_of_range_labels_when_computed(monkeypatch, reads_free):
    import labpkg.nn.confusion

    monkeypatch.setattr(labpkg.nn.confusion, "host_reads_are_free", lambda device: reads_free)
    m = MeanIoU(3, validate_args=False)
    m.update(t([[0, 1]]), t([[0, 7]]))  # no error yet (and, on a GPU, no host read)
    m.update(t([[-1, 2]]), t([[0, 2]]))  # a predicted label below 0
    with pytest.raises(ValueError, match=r"2 pixels had a true or predicted label outside"):
        m.compute()
    fine = MeanIoU(3, validate_args=False)
    fine.update(t([[0, 1], [2, 2]]), t([[0, 1], [2, 1]]))  # in range: counted, not refused
    assert fine.confmat.tolist() == [[1, 0, 0], [0, 1, 1], [0, 0, 1]]
    checked = MeanIoU(3)
    with pytest.raises(ValueError, match="labels outside"):
        checked.update(t([[0, 1]]), t([[0, 7]]))  # raised at once


def test_the_trainer_checks_first_batches_and_restores_validate_args(monkeypatch):
    import labpkg.core.checks

    seen = []
    original = labpkg.core.checks.check_labels

    def spy(*args, **kwargs):
        seen.append(args[1])
        return original(*args, **kwargs)

    monkeypatch.setattr(labpkg.core.checks, "check_labels", spy)
    monkeypatch.setattr(labpkg.nn.confusion, "check_labels", spy)
    monkeypatch.setattr(labpkg.nn.functional, "check_labels", spy)
    # as on a GPU, where a metric checks before counting (a CPU's count checks as it goes)
    monkeypatch.setattr(labpkg.nn.confusion, "host_reads_are_free", lambda device: False)
    loss, metric = labpkg.CrossEntropyLoss(), labpkg.MeanIoU(3)
    model = tiny_model()
    trainer = labpkg.Trainer(
        model, torch.optim.SGD(model.parameters(), lr=0.1), loss, [metric], device="cpu"
    )
    trainer.fit(loader(tiny_data(24)), epochs=2, verbose=0)  # 6 mini-batches per epoch
    assert len(seen) == 2 * 2  # first mini-batch of each epoch: the loss and the metric
    assert loss.validate_args and metric.validate_args and trainer.val_metrics[0].validate_args


@pytest.mark.parametrize("device_type", ["cpu", "as-on-a-gpu"])
def test_count_bins_counts_as_bincount_on_the_cpu_and_the_gpu_path(device_type):
    import labpkg.nn.bins

    index = torch.randint(0, 11, (1000,), generator=torch.Generator().manual_seed(0))
    with pytest.MonkeyPatch.context() as patch:  # the GPU's scatter_add_ path, on a CPU
        cpu = device_type == "cpu"
        patch.setattr(labpkg.nn.bins, "index_errors_are_raised", lambda device: cpu)
        counts = labpkg.nn.bins.count_bins(index, 11)
    assert torch.equal(counts, torch.bincount(index, minlength=11))


def test_add_counts_counts_indices_of_every_length_in_turn():
    # the ones added are cached by length: each call must get ones of its own length
    from labpkg.nn.bins import add_counts

    counts, gen = torch.zeros(7, dtype=torch.long), torch.Generator().manual_seed(1)
    indices = [torch.randint(0, 7, (n,), generator=gen) for n in (5, 3, 5, 1, 8, 3)]
    for index in indices:
        add_counts(counts, index)
    assert torch.equal(counts, torch.bincount(torch.cat(indices), minlength=7))


def test_count_bins_refuses_an_index_outside_its_bins_on_a_cpu():
    from labpkg.nn.bins import count_bins

    for index in ([0, 5], [-1, 0]):
        with pytest.raises(IndexError):
            count_bins(torch.tensor(index), 5)


# (t, p) pairs outside [0, 3) whose index lands in a bin: 1·3 − 1 = 2 and −3 + 4 = 1; a t·C
# that wraps around int64 to 2; and two whose int32 halves add up to a bin (2³² − 3 is
# (−3, 0) as halves: −3 + 3·1 = 0; 3·2,863,311,531 = 2·2³² + 1 wraps around int32 to 1)
STRAYS = [(1, -1), (-1, 4), ((2**64 + 2) // 3, 0), (1, 2**32 - 3), (2_863_311_531, 0)]


@pytest.mark.parametrize("stray", STRAYS)
def test_a_stray_label_after_the_first_chunk_goes_to_the_outside_bin(monkeypatch, stray):
    """The CPU counts ``_CHUNK`` pixels at a time: a label outside [0, C) in a later chunk,
    even one whose t·C + p lands in a bin of the matrix (``STRAYS``), is still found, and the
    chunks before it are not counted twice."""
    import labpkg.nn.confusion

    monkeypatch.setattr(labpkg.nn.confusion, "_CHUNK", 4)
    target = torch.tensor([[0, 1, 2, 0, 1, 2, stray[0], 0]])  # chunks of 4: the stray in the 2nd
    labels = torch.tensor([[0, 1, 2, 1, 1, 0, stray[1], 0]])
    counts = labpkg.nn.confusion.pair_counts(labels, target, 3, None)
    assert counts.tolist() == [2, 1, 0, 0, 2, 0, 1, 0, 1, 1]  # 7 pixels in bins, 1 outside
    with pytest.raises(ValueError, match="labels outside"):
        MeanIoU(3).update(labels, target)


def test_strided_labels_are_counted_as_their_contiguous_copies():
    """Labels read as 32-bit halves need contiguous memory: a transposed (strided) view is
    copied first, and counted pixel for pixel as ``bincount`` counts it."""
    gen = torch.Generator().manual_seed(0)
    target = torch.randint(0, 3, (2, 5, 7), generator=gen).transpose(1, 2)  # (2, 7, 5)
    labels = torch.randint(0, 3, (2, 5, 7), generator=gen).transpose(1, 2)
    assert not target.is_contiguous() and not labels.is_contiguous()
    expected = torch.bincount((target * 3 + labels).reshape(-1), minlength=9).reshape(3, 3)
    assert torch.equal(confusion_matrix(labels, target, 3), expected)


# small labels, and int64 labels whose 32-bit halves are small, whose low half is negative
# (2³² − 3 is (−3, 0) as halves: −3 + 3·1 = 0, a bin, if only the int32 add saw it), or whose
# t·C wraps around int64
LABELS = st.one_of(
    st.integers(-3, 7),
    st.sampled_from([2**32, 2**32 + 2, 2 * 2**32 + 1, -(2**32), 2**32 - 3, 2**32 - 1]),
    st.sampled_from([(2**64 + 2) // 3, 2**63 - 1, 2_863_311_531]),
)
IN_RANGE = st.tuples(st.integers(0, 2), st.integers(0, 2))


@pytest.mark.parametrize(
    ("reads_free", "chunk"), [(True, 32_768), (True, 1), (False, 32_768)],
    ids=["cpu", "cpu-a-pixel-a-chunk", "as-on-a-gpu"],
)  # fmt: skip
@settings(deadline=None)
@given(
    # mostly in range, so that a stray label often comes after a chunk that passed its check
    pairs=st.lists(st.one_of(*[IN_RANGE] * 3, st.tuples(LABELS, LABELS)), min_size=1, max_size=12),
    scores=st.booleans(),
)
def test_pair_counts_match_a_pixel_by_pixel_count_for_any_labels(reads_free, chunk, pairs, scores):
    """Every fast path (a label range read on a CPU, the count's own bounds) counts what a
    loop over the pixels counts, and puts each pixel with a label outside [0, 3) in the last
    bin, wherever the stray label sits (t or p, below 0, above C, in another row's bins, or
    where t·C + p wraps around int64 into [0, C·C)), and in whichever chunk of the CPU's
    count (a stray label in a later chunk leaves no count of the earlier ones behind)."""
    import labpkg.nn.confusion

    c = 3
    if scores:  # predictions from an argmax are in range by construction
        pairs = [(true, pred % c) for true, pred in pairs]
    expected = [0] * (c * c + 1)
    for true, pred in pairs:
        inside = 0 <= true < c and 0 <= pred < c
        expected[true * c + pred if inside else c * c] += 1
    target = torch.tensor([[true for true, _ in pairs]])
    labels = torch.tensor([[pred for _, pred in pairs]])
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(labpkg.nn.confusion, "host_reads_are_free", lambda device: reads_free)
        patch.setattr(labpkg.nn.confusion, "_CHUNK", chunk)
        counts = labpkg.nn.confusion.pair_counts(labels, target, c, None, labels_in_range=scores)
    assert counts.tolist() == expected


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float64])
@pytest.mark.parametrize("channels_last", [False, True])
def test_class_ids_are_argmax_with_ties_nans_and_infinities(dtype, channels_last):
    """``class_ids`` (through ``max``, faster on a CPU) gives ``argmax``'s classes exactly: the
    first class on a tie, a NaN taken as the highest, ±inf, in any memory layout; and
    ``top_classes`` gives each pixel's score of that class."""
    from labpkg.nn.labels import class_ids, top_classes

    gen = torch.Generator().manual_seed(0)
    scores = torch.randint(-2, 3, (4, 5, 6, 7), generator=gen).to(dtype)  # many ties
    draw = torch.rand(scores.shape, generator=gen)
    scores[draw < 0.05] = float("nan")
    scores[(draw > 0.05) & (draw < 0.1)] = float("inf")
    scores[(draw > 0.1) & (draw < 0.15)] = -float("inf")
    if channels_last:
        scores = scores.contiguous(memory_format=torch.channels_last)
    assert torch.equal(class_ids(scores), torch.argmax(scores, dim=1))
    top, _ = top_classes(scores)
    chosen = scores.gather(1, torch.argmax(scores, dim=1, keepdim=True))[:, 0]
    assert torch.equal(top.nan_to_num(7.0), chosen.nan_to_num(7.0))
