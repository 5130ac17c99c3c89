"""Contracts of the batch-processing kinds: the shared step checks, detectors and extractors."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from satcore.components import Batch, Detection
from satcore.data import Item
from satcore.errors import ComponentError
from satcore.testing.contracts.base import ComponentContract
from satcore.testing.data import make_change_items, make_change_pair, make_scene_item
from satcore.testing.helpers import assert_same_outputs


class StepContract(ComponentContract):
    """Checks for components that process batches (every kind but sources)."""

    #: Items per batch in the order and independence checks.
    n_items: ClassVar[int] = 4

    def make_items(self) -> list[Item]:
        """Items to process: seeded pairs with planted changes (scenes for image-only kinds)."""
        if "pair" in self.component_class().consumes or not self.component_class().consumes:
            return make_change_items(self.n_items, seed=0)
        return [make_scene_item(f"scene-{i}", seed=i) for i in range(self.n_items)]

    def make_inputs(self, items: Sequence[Item]) -> list[Any]:
        """What the step's ``input:`` gives each item (default: the items themselves, ``input: source``)."""
        return list(items)

    def make_bad_item(self) -> Item:
        """An item the component cannot process: a pair consumer gets one image, others get no image."""
        good = make_change_pair("bad-item", seed=99)
        if "pair" in self.component_class().consumes:
            return Item("bad-item", [good.images[0]], meta={"kind": "scene"})
        return Item("bad-item", [], meta={"kind": "scene"})

    def check_result(self, result: Any, item: Item) -> None:
        """Kind-specific shape of one result (overridden per kind)."""

    def prepare(self, comp: Any, tmp_path: Path) -> Any:
        """Called on every fresh instance before processing (detectors fit here)."""
        return comp

    def process(self, comp: Any, items: Sequence[Item]) -> list[Any]:
        """Run ``comp`` on one batch of ``items``."""
        res = comp.process(Batch(list(items), self.make_inputs(items), comp.step_id))
        assert isinstance(res, (list, tuple)), (
            f"{type(comp).__qualname__}.process() returned {type(res).__name__}; return a list")
        return list(res)

    def fresh(self, tmp_path: Path, seed: int = 0) -> Any:
        """A built, set-up and prepared instance."""
        return self.prepare(self.build(tmp_path, seed=seed), tmp_path)

    # -------------------------------------------------------------- the checks
    def test_one_result_per_item_in_order(self, tmp_path: Path) -> None:
        """One result per item, in the items' order."""
        comp = self.fresh(tmp_path)
        items = self.make_items()
        ids = [it.item_id for it in items]
        out = self.process(comp, items)
        assert len(out) == len(items), (
            f"process() returned {len(out)} results for a batch of {len(items)} items")
        for res, item in zip(out, items, strict=True):
            self.check_result(res, item)
        # a batch of one cannot be out of order: it is the reference for each position
        alone = [self.process(comp, [it]) for it in items]
        assert all(len(a) == 1 for a in alone), (
            "process() must return exactly one result for a one-item batch")
        assert_same_outputs(out, [a[0] for a in alone], self.rtol, self.atol, ids)
        backwards = self.process(comp, items[::-1])
        assert len(backwards) == len(items), "process() returned a different number of results"
        # results follow the items: reversing the batch reverses the results
        assert_same_outputs(backwards[::-1], out, self.rtol, self.atol, ids)

    def test_batch_independence(self, tmp_path: Path) -> None:
        """An item's result does not depend on which items share its batch."""
        comp = self.fresh(tmp_path)
        items = self.make_items()
        ids = [it.item_id for it in items]
        together = self.process(comp, items)
        alone = [self.process(comp, [it])[0] for it in items]
        assert_same_outputs(alone, together, self.rtol, self.atol, ids)
        odd = self.process(comp, items[1::2])
        assert_same_outputs(odd, together[1::2], self.rtol, self.atol, ids[1::2])

    def test_bad_item_raises_component_error(self, tmp_path: Path) -> None:
        """An item the component cannot handle raises ``ComponentError``."""
        comp = self.fresh(tmp_path)
        bad = self.make_bad_item()
        try:
            res = self.process(comp, [bad])
        except ComponentError:
            return
        except Exception as exc:
            pytest.fail(f"a bad item raised {type(exc).__name__}: {exc}; raise satcore.errors.ComponentError "
                        "with a message that says what is wrong with the item")
        pytest.fail(f"process() returned {res!r} for a bad item ({len(bad.images)} images); raise "
                    "satcore.errors.ComponentError instead")

    def test_same_seed_same_output(self, tmp_path: Path) -> None:
        """Two instances built with the same seed give the same results."""
        items = self.make_items()
        first = self.process(self.fresh(tmp_path / "a", seed=7), items)
        second = self.process(self.fresh(tmp_path / "b", seed=7), items)
        assert_same_outputs(first, second, self.rtol, self.atol, [it.item_id for it in items])


class DetectorContract(StepContract):
    """The detector contract: :class:`~satcore.components.Detection` per item, maps on the item's grid.

    A fittable detector (``fittable = True``) is fitted on :meth:`make_fit_items` before processing, and its
    state must survive :meth:`~satcore.components.Detector.save_state` / ``load_state``.
    """

    kind: ClassVar[str] = "detector"

    def make_fit_items(self) -> list[Item]:
        """Labelled training items for fittable detectors (half changed, half not)."""
        return make_change_items(6, seed=1, unchanged=3)

    def prepare(self, comp: Any, tmp_path: Path) -> Any:
        """Fit a fittable detector on :meth:`make_fit_items`."""
        if comp.fittable:
            items = self.make_fit_items()
            records = comp.fit_records(Batch(items, self.make_inputs(items), comp.step_id))
            labels = np.asarray([int(it.image_label or 0) for it in items])
            comp.fit(list(records), labels, np.asarray([it.item_id for it in items]))
        return comp

    def check_result(self, result: Any, item: Item) -> None:
        """A :class:`Detection` with a 0/1 label, finite score, and maps on the item's grid."""
        assert isinstance(result, Detection), (
            f"a detector returns satcore.components.Detection per item, got {type(result).__name__}")
        assert result.label in (None, 0, 1), f"label must be 0, 1 or None, got {result.label!r}"
        if result.score is not None:
            assert np.isfinite(float(result.score)), f"score must be finite, got {result.score!r}"
        shape = item.reference.shape
        if result.score_map is not None:
            sm = np.asarray(result.score_map)
            assert sm.shape == shape, f"score_map is {sm.shape}, the item is {shape}"
            assert np.nanmin(sm) >= 0 and np.nanmax(sm) <= 1, (
                f"score_map must lie in [0, 1] (pixel AUC compares scores across items), got "
                f"[{np.nanmin(sm):g}, {np.nanmax(sm):g}]")
        if result.label_map is not None:
            lm = np.asarray(result.label_map)
            assert lm.shape == shape, f"label_map is {lm.shape}, the item is {shape}"
            assert lm.dtype == bool or set(np.unique(lm)) <= {0, 1}, "label_map must be boolean (or 0/1)"

    def test_fitted_state_round_trips(self, tmp_path: Path) -> None:
        """Fitted state saved and loaded gives the same results."""
        comp = self.fresh(tmp_path / "a")
        if not comp.fittable:
            pytest.skip("not fittable")
        path = tmp_path / f"state{comp.state_suffix}"
        comp.save_state(path)
        assert path.exists(), f"save_state({path}) wrote nothing"
        other = self.build(tmp_path / "b")
        other.load_state(path)
        items = self.make_items()
        assert_same_outputs(self.process(other, items), self.process(comp, items), self.rtol, self.atol,
                            [it.item_id for it in items])


class ExtractorContract(StepContract):
    """The extractor contract: one ``dict`` of features per item."""

    kind: ClassVar[str] = "extractor"

    def check_result(self, result: Any, item: Item) -> None:
        """A dict with string keys."""
        assert isinstance(result, dict), f"an extractor returns a dict per item, got {type(result).__name__}"
        assert all(isinstance(k, str) for k in result), "feature names must be strings"


__all__ = ["DetectorContract", "ExtractorContract", "StepContract"]
