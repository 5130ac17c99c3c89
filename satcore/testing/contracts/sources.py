"""The source contract: stable unique ids, loads what it lists, a bad file is a ComponentError."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import pytest

from satcore.data import Item, ItemRef, Raster, item_id_problem
from satcore.errors import ComponentError
from satcore.testing.contracts.base import ComponentContract
from satcore.testing.data import make_pairs_dir
from satcore.testing.helpers import assert_same_outputs


class SourceContract(ComponentContract):
    """The source contract: stable unique ids, loads what it lists, a bad file is a ComponentError.

    Override :meth:`make_params` to point the source at data (``tmp_path`` is the test's folder;
    :func:`~satcore.testing.make_pairs_dir` writes a small ``folder-pairs`` dataset).
    """

    kind: ClassVar[str] = "source"

    def make_params(self, tmp_path: Path) -> dict[str, Any]:
        """Params of the source (default :attr:`params`)."""
        return dict(type(self).params)

    def make_bad_ref(self, tmp_path: Path, refs: Sequence[ItemRef]) -> ItemRef:
        """A ref whose files do not exist (the first listed ref with every path pointed elsewhere)."""
        first = refs[0]
        missing = {k: str(tmp_path / "does-not-exist" / Path(v).name) for k, v in first.paths.items()}
        return ItemRef("bad-item", missing, dict(first.meta))

    def check_item(self, item: Item, ref: ItemRef) -> None:
        """Shape of one loaded item (rasters, or a text-only item; truth on the first image's grid)."""
        assert isinstance(item, Item), f"load() returns satcore.data.Item, got {type(item).__name__}"
        assert item.item_id == ref.item_id, f"load() gave id {item.item_id!r} for ref {ref.item_id!r}"
        assert all(isinstance(r, Raster) for r in item.images), "item.images must be satcore.data.Raster"
        assert item.images or item.text is not None or item.texts or item.classes, (
            "an item needs rasters, or (a text-only item) a text, captions or classes")
        for name, target in (item.targets or {}).items():
            assert isinstance(target, Raster), f"targets[{name!r}] must be a satcore.data.Raster"
        if item.label is not None:
            assert item.label.shape == item.reference.shape, "label mask must be on the first image's grid"

    def refs(self, comp: Any) -> list[ItemRef]:
        """List the refs, checking their type."""
        refs = list(comp.list_items())
        assert refs, "list_items() returned nothing for the test data; make_params() must point at data"
        assert all(isinstance(r, ItemRef) for r in refs), "list_items() yields satcore.data.ItemRef"
        return refs

    def test_lists_unique_ids_in_stable_order(self, tmp_path: Path) -> None:
        """Item ids are unique and listed in the same order every time."""
        comp = self.build(tmp_path)
        first = [r.item_id for r in self.refs(comp)]
        dupes = sorted({i for i in first if first.count(i) > 1})
        assert not dupes, f"duplicate item ids: {dupes}"
        unsafe = {i: item_id_problem(i) for i in first if item_id_problem(i)}
        assert not unsafe, (f"item ids that would leave the run folder: {unsafe}; check ids with "
                            "satcore.data.check_item_id or item_id_problem")
        again = [r.item_id for r in self.refs(self.build(tmp_path))]
        assert again == first, "two listings of the same data differ in order or content"

    def test_one_item_per_ref_in_order(self, tmp_path: Path) -> None:
        """Each listed ref loads into its item, whatever was loaded before."""
        comp = self.build(tmp_path)
        refs = self.refs(comp)
        items = [comp.load(r) for r in refs]
        for item, ref in zip(items, refs, strict=True):
            self.check_item(item, ref)
        # loading is independent of what was loaded before
        backwards = [comp.load(r) for r in refs[::-1]][::-1]
        assert_same_outputs(backwards, items, self.rtol, self.atol, [r.item_id for r in refs])

    def test_bad_item_raises_component_error(self, tmp_path: Path) -> None:
        """An item the component cannot handle raises ``ComponentError``."""
        comp = self.build(tmp_path)
        refs = self.refs(comp)
        if not refs[0].paths:
            pytest.skip("the source's refs name no files (a text source): there is no file to break")
        bad = self.make_bad_ref(tmp_path, refs)
        try:
            comp.load(bad)
        except ComponentError:
            return
        except Exception as exc:
            pytest.fail(f"loading a ref with missing files raised {type(exc).__name__}: {exc}; raise "
                        "satcore.errors.ComponentError naming the file")
        pytest.fail("loading a ref with missing files returned an item; raise satcore.errors.ComponentError")

    def test_same_seed_same_output(self, tmp_path: Path) -> None:
        """Two instances built with the same seed give the same results."""
        a, b = self.build(tmp_path, seed=3), self.build(tmp_path, seed=3)
        ra, rb = self.refs(a), self.refs(b)
        assert [r.item_id for r in ra] == [r.item_id for r in rb]
        assert_same_outputs([a.load(r) for r in ra], [b.load(r) for r in rb], self.rtol, self.atol,
                            [r.item_id for r in ra])


class FolderPairsData:
    """Mixin for source contracts that read the ``folder-pairs`` layout: writes one into ``tmp_path``."""

    def make_params(self, tmp_path: Path) -> dict[str, Any]:
        """``root:`` a fresh :func:`~satcore.testing.make_pairs_dir` dataset."""
        root = tmp_path / "pairs"
        if not root.exists():
            make_pairs_dir(root)
        return {**dict(type(self).params), "root": str(root)}  # type: ignore[attr-defined]


__all__ = ["FolderPairsData", "SourceContract"]
