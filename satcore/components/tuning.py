"""Choosing a CPU thread count from the run itself.

How many threads a model step should compute with depends on how expensive the model is next to reading the
data: a cheap model whose time goes to decoding images does best when it leaves cores to the reader threads
(a tiny CLIP model on 2 cores: 1.3 s → 0.9 s for its step), an expensive one does best with every core
(ViT-B-32 on the same 2 cores: half the throughput with one thread). No static rule gets both right, so
:class:`ThreadTuner` measures: it tries each candidate on a few batches of the real run and keeps the one with
the shortest wall time per item, counted start to start between batches so that reading, waiting and
computing are all in it.

Trying a candidate costs a batch at a slower count, which is a lot for a large model (ViT-B-32 on 2 cores: a
batch at one thread takes twice as long). Fewer threads can only win by leaving cores to the work that runs
beside the model, so when that work is known (the engine's loading probe measures the reading per item) and is
too small for any candidate to win by the decisive margin, the first candidate is kept without trying the
others.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any


class ThreadTuner:
    """Try each thread count on a few batches, then keep the fastest one.

    Call :meth:`tick` at the start of every batch with the number of items in it; it applies (through
    ``apply``) the thread count that batch should use. The schedule is ``warmup`` batches with the first
    candidate (not measured: caches, allocator, lazy initialisation), then ``rounds`` batches per candidate,
    interleaved; the time per item of a batch is the time from its ``tick`` to the next one's. The fastest
    candidate (by its best batch, which is robust to a batch delayed by something else) is kept for the rest
    of the run. Once every candidate has one measured batch and the fastest beats the others by a ratio
    within ``decisive`` (default 1.15 to 3), it is kept at once: a clear case costs one batch at the slower
    count, not ``rounds``. A larger gap is more likely a batch that also paid for something else (the end of a
    fit pass, a slow disk) than the thread count, so it waits for the next round. With one candidate nothing
    is tried.

    ``side_work`` (optional) returns the CPU seconds per item of other work running beside the step (the
    loader threads' reading; ``None`` while unknown). Giving cores to that work saves at most that much per
    item, so once the first candidate has one measured batch, if the side work is below ``decisive[0] - 1``
    of its time per item (15 % by default: no other candidate could beat it decisively), it is kept at once.
    """

    def __init__(
        self,
        candidates: Sequence[int],
        apply: Callable[[int], None],
        rounds: int = 2,
        warmup: int = 1,
        decisive: tuple[float, float] = (1.15, 3.0),
        clock: Callable[[], float] = time.perf_counter,
        side_work: Callable[[], float | None] | None = None,
    ) -> None:
        self.candidates = list(dict.fromkeys(int(c) for c in candidates))
        if not self.candidates:
            raise ValueError("no candidate thread counts")
        self.apply = apply
        self.clock = clock
        self.warmup = warmup
        self.decisive = decisive
        self.side_work = side_work
        self.reason: str | None = None
        self.schedule = [self.candidates[0]] * warmup + [c for _ in range(rounds) for c in self.candidates]
        self.samples: dict[int, list[float]] = {c: [] for c in self.candidates}
        self.chosen: int | None = self.candidates[0] if len(self.candidates) == 1 else None
        self.current: int | None = None
        self._calls = 0
        self._used: list[int] = []  # every count applied, in order
        self._last: tuple[float, int, int, bool] | None = None

    def tick(self, n_items: int) -> int:
        """Start a batch of ``n_items``: record the last batch's time, apply and return this one's count."""
        now = self.clock()
        if self._last is not None:
            t0, n, c, measured = self._last
            if measured and n > 0:
                self.samples[c].append((now - t0) / n)
                self._maybe_decide()
        k, self._calls = self._calls, self._calls + 1
        if self.chosen is None and k < len(self.schedule):
            c, measured = self.schedule[k], k >= self.warmup
        else:
            if self.chosen is None:
                self.chosen = min(self.candidates, key=self._best)
            c, measured = self.chosen, False
        if c != self.current:
            self.apply(c)
            self.current = c
            self._used.append(c)
        self._last = (now, n_items, c, measured)
        return c

    def _best(self, c: int) -> float:
        return min(self.samples[c], default=float("inf"))

    def _maybe_decide(self) -> None:
        if self.chosen is not None:
            return
        first, others = self.candidates[0], self.candidates[1:]
        if self.side_work is not None and self.samples[first] and not any(self.samples[c] for c in others):
            side = self.side_work()
            if side is not None and side < (self.decisive[0] - 1) * self._best(first):
                self.chosen = first
                self.reason = (
                    f"work beside the step ({side * 1e3:.3g} ms/item) is under "
                    f"{self.decisive[0] - 1:.0%} of an item's time ({self._best(first) * 1e3:.3g} ms): "
                    "fewer threads cannot win"
                )
                return
        if not all(self.samples[c] for c in self.candidates):
            return
        ranked = sorted(self.candidates, key=self._best)
        lo, hi = self.decisive
        if lo * self._best(ranked[0]) <= self._best(ranked[1]) <= hi * self._best(ranked[0]):
            self.chosen = ranked[0]

    def summary(self) -> dict[str, Any]:
        """For the manifest: each candidate's best seconds per item, the count kept (``None``: undecided).

        Undecided, ``reason`` says why: the run had too few batches to compare the candidates (a batch's time
        is known only when the next one starts, after ``warmup`` unmeasured ones), and ``used`` lists the
        counts its batches ran with.
        """
        out: dict[str, Any] = {
            "chosen": self.chosen,
            "seconds_per_item": {str(c): (min(v) if v else None) for c, v in self.samples.items()},
        }
        if self.reason:
            out["reason"] = self.reason
        elif self.chosen is None:
            need = self.warmup + len(self.candidates) + 1
            out["reason"] = (
                f"undecided: the run ended after {self._calls} batch(es), too few to compare "
                f"{len(self.candidates)} thread counts ({self.warmup} warm-up batch(es), then one timed "
                f"batch per count, each timed until the next batch starts: at least {need} batches)"
            )
            out["used"] = list(dict.fromkeys(self._used))
        return out
