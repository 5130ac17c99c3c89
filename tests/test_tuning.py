"""satcore.components.tuning.ThreadTuner: the thread count chosen from measured batch times."""

from __future__ import annotations

import pytest

from satcore.components.tuning import ThreadTuner


def _drive(costs: dict[int, float], n_batches: int, n_items: int = 10, **kw):
    """Run the tuner over batches whose time per item depends on the applied thread count."""
    clock = [0.0]
    applied: list[int] = []
    t = ThreadTuner([2, 1], applied.append, clock=lambda: clock[0], **kw)
    used = []
    for _ in range(n_batches):
        c = t.tick(n_items)
        used.append(c)
        clock[0] += costs[c] * n_items
    return t, used, applied


@pytest.mark.parametrize(("costs", "best"), [({2: 2.2e-3, 1: 2e-3}, 1), ({2: 1.9e-3, 1: 2e-3}, 2)])
def test_keeps_the_faster_count(costs, best):
    t, used, applied = _drive(costs, 12)
    # a close call: warm-up with the first candidate, two interleaved rounds, then the winner for the rest
    assert used[:5] == [2, 2, 1, 2, 1]
    assert t.chosen == best and set(used[5:]) == {best}
    assert applied == [c for i, c in enumerate(used) if i == 0 or used[i - 1] != c]  # applied only on changes
    s = t.summary()
    assert s["chosen"] == best
    assert s["seconds_per_item"] == {"2": pytest.approx(costs[2]), "1": pytest.approx(costs[1])}


@pytest.mark.parametrize(("costs", "best"), [({2: 3e-3, 1: 2e-3}, 1), ({2: 1e-3, 1: 2e-3}, 2)])
def test_a_clear_winner_is_kept_after_one_round(costs, best):
    t, used, _ = _drive(costs, 8)
    assert used[:3] == [2, 2, 1] and t.chosen == best and set(used[3:]) == {best}


def test_an_outlier_gap_waits_for_the_second_round():
    """One batch 10x slower (it also paid for something else) does not decide after one round."""
    clock = [0.0]
    t = ThreadTuner([2, 1], lambda c: None, clock=lambda: clock[0])
    per_item = {2: 1e-3, 1: 1e-3}
    used = []
    for k in range(8):
        c = t.tick(10)
        used.append(c)
        clock[0] += per_item[c] * 10 * (10.0 if k == 2 else 1.0)  # the first "1" batch is an outlier
    assert used[:5] == [2, 2, 1, 2, 1] and t.chosen in (1, 2)
    per_item = {2: 1e-3, 1: 1.2e-3}
    clock[0] = 0.0
    t = ThreadTuner([2, 1], lambda c: None, clock=lambda: clock[0])
    for k in range(8):
        c = t.tick(10)
        clock[0] += per_item[c] * 10 * (10.0 if k == 1 else 1.0)  # the first measured "2" batch is an outlier
    assert t.chosen == 2  # not 1, which a decision after one round would have kept


def test_warmup_batch_is_not_measured_and_one_slow_batch_does_not_decide():
    clock = [0.0]
    t = ThreadTuner([2, 1], lambda c: None, clock=lambda: clock[0])
    per_item = {2: 1e-3, 1: 1.05e-3}  # close: not decided after one round
    for k in range(8):
        c = t.tick(10)
        slow = 50.0 if k == 0 else 1.1 if k == 1 else 1.0  # a slow warm-up, a slightly slow first "2" batch
        clock[0] += per_item[c] * 10 * slow
    assert t.chosen == 2  # its other batch was fast: the best batch counts
    assert t.summary()["seconds_per_item"] == {"2": pytest.approx(1e-3), "1": pytest.approx(1.05e-3)}


def test_single_candidate_and_short_runs():
    applied: list[int] = []
    t = ThreadTuner([3, 3], applied.append)
    assert t.chosen == 3 and [t.tick(4) for _ in range(3)] == [3, 3, 3] and applied == [3]
    t, used, _ = _drive({2: 1e-3, 1: 2e-3}, 3)
    assert t.chosen is None and used == [2, 2, 1]  # undecided until the schedule is through
    with pytest.raises(ValueError):
        ThreadTuner([], lambda c: None)


@pytest.mark.parametrize("n_batches", [1, 3])
def test_a_run_too_short_to_compare_says_so(n_batches):
    """An item sample that fits in one batch (12 items, batch_size 32) leaves the count undecided.

    The manifest then says why, and which counts the batches ran with, instead of a bare ``chosen: null``.
    """
    t, used, _ = _drive({2: 1e-3, 1: 2e-3}, n_batches)
    s = t.summary()
    assert s["chosen"] is None
    assert s["reason"].startswith(
        f"undecided: the run ended after {n_batches} batch(es), too few to compare 2 thread counts")
    assert "at least 4 batches" in s["reason"]
    assert s["used"] == list(dict.fromkeys(used))
    t, _, _ = _drive({2: 1e-3, 1: 2e-3}, 6)
    assert t.chosen == 2 and "reason" not in t.summary() and "used" not in t.summary()


def _drive_side(costs: dict[int, float], side, n_batches: int = 8, n_items: int = 10):
    clock = [0.0]
    t = ThreadTuner([2, 1], lambda c: None, clock=lambda: clock[0], side_work=side)
    used = []
    for _ in range(n_batches):
        c = t.tick(n_items)
        used.append(c)
        clock[0] += costs[c] * n_items
    return t, used


def test_small_work_beside_the_step_keeps_the_first_count_untried():
    """Reading at 2 ms/item beside a 66 ms/item model: one thread fewer cannot win 15 %; it is not tried."""
    t, used = _drive_side({2: 0.066, 1: 0.13}, lambda: 0.002)
    assert used == [2] * 8 and t.chosen == 2
    s = t.summary()
    assert s["seconds_per_item"] == {"2": pytest.approx(0.066), "1": None}
    assert "fewer threads cannot win" in s["reason"]


@pytest.mark.parametrize("side", [lambda: 0.0018, lambda: None, None])
def test_side_work_that_matters_or_is_unknown_still_tries(side):
    """Reading at 1.8 ms/item beside a 3.3 ms/item step (or unknown reading): both counts are measured."""
    t, used = _drive_side({2: 3.3e-3, 1: 2e-3}, side)
    assert used[:3] == [2, 2, 1] and t.chosen == 1 and "reason" not in t.summary()


def test_serial_reading_means_nothing_beside_the_step():
    t, used = _drive_side({2: 1e-3, 1: 0.5e-3}, lambda: 0.0)
    assert used == [2] * 8 and t.chosen == 2  # nothing to leave cores to
