"""Train/test splits grouped by tile: crops of one tile never straddle the split; reproducible by seed."""

from __future__ import annotations

import pandas as pd
import pytest

import satcore
from satcore.data import ItemRef
from satcore.errors import UsageError
from satcore.evaluate.split import assign_splits, split_summary


def _refs(n_tiles=30, crops=4):
    return [ItemRef(f"t{t}_{c}", meta={"tile": f"t{t}"}) for t in range(n_tiles) for c in range(crops)]


def test_groups_never_straddle_and_seed_reproduces():
    refs = _refs()
    s1 = assign_splits(refs, 0.3, "tile", seed=7)
    by_tile: dict[str, set[str]] = {}
    for r, s in zip(refs, s1, strict=True):
        by_tile.setdefault(r.meta["tile"], set()).add(s)
    assert all(len(v) == 1 for v in by_tile.values())
    n_test_tiles = sum(v == {"test"} for v in by_tile.values())
    assert n_test_tiles == 9  # ceil(0.3 * 30) groups, as GroupShuffleSplit does
    assert assign_splits(refs, 0.3, "tile", seed=7) == s1
    others = {tuple(assign_splits(refs, 0.3, "tile", seed=s)) for s in range(5)}
    assert len(others) > 1  # the seed matters


def test_no_group_splits_items_and_no_split_is_all():
    refs = _refs(5, 4)
    s = assign_splits(refs, 0.5, None, seed=0)
    by_tile = {}
    for r, x in zip(refs, s, strict=True):
        by_tile.setdefault(r.meta["tile"], set()).add(x)
    assert s.count("test") == 10
    assert any(len(v) == 2 for v in by_tile.values())  # without group_by, crops of a tile may straddle
    assert assign_splits(refs, None, "tile", 0) == ["all"] * 20
    with pytest.raises(ValueError, match="every item has the same `tile`"):
        assign_splits([ItemRef("a", meta={"tile": "x"}), ItemRef("b", meta={"tile": "x"})], 0.3, "tile", 0)


def test_engine_split_keeps_levir_tiles_together(tmp_path, levir_dir, h, pm):
    spec = h.spec_dict(levir_dir, tmp_path / "o")
    spec["source"]["labels"] = "optional"
    spec["evaluate"]["split"] = {"test": 0.5, "group_by": "tile"}
    spec["seed"] = 1
    satcore.run(spec, progress=False, pm=pm)
    df = pd.read_parquet(tmp_path / "o" / "results.parquet")
    df["tile"] = df["item_id"].str.replace(r"(_\d+){2}$", "", regex=True)
    assert (df.groupby("tile")["split"].nunique() == 1).all()
    assert set(df["split"]) == {"train", "test"}
    # test_2 has two crops in the sample: they share a side
    assert df.loc[df["tile"] == "test_2", "split"].nunique() == 1 and (df["tile"] == "test_2").sum() == 2
    spec["output"]["dir"] = str(tmp_path / "o2")
    satcore.run(spec, progress=False, pm=pm)
    pd.testing.assert_series_equal(pd.read_parquet(tmp_path / "o2" / "results.parquet")["split"], df["split"])


def test_engine_split_on_one_group_is_a_usage_error(tmp_path, h, pm):
    h.make_pairs(tmp_path / "d", 3)
    spec = h.spec_dict(tmp_path / "d", tmp_path / "o")
    spec["evaluate"]["split"] = {"test": 0.3, "group_by": "kind"}
    with pytest.raises(
        UsageError,
        match=r"^<spec>: evaluate\.split: cannot split: every item has the same `kind` "
        r"\('pair'\)",
    ) as ei:
        satcore.run(spec, progress=False, pm=pm)
    assert ei.value.exit_code == 2


def test_split_summary_warns_when_groups_distort_the_fraction():
    refs = _refs(30, 4)
    names = assign_splits(refs, 0.3, "tile", seed=7)
    line, warning = split_summary(refs, names, 0.3, "tile")
    assert line == "split: 84 train, 36 test items (30 `tile` groups)" and warning is None
    # a pattern that lumps the crops into one giant group and two small ones
    lumped = [ItemRef(r.item_id, meta={"tile": "train" if i < 100 else r.meta["tile"]})
              for i, r in enumerate(refs)]
    names = assign_splits(lumped, 0.3, "tile", seed=0)
    n_test = names.count("test")
    line, warning = split_summary(lumped, names, 0.3, "tile")
    assert line == f"split: {120 - n_test} train, {n_test} test items (6 `tile` groups)"
    assert abs(n_test / 120 - 0.3) > 0.15  # GroupShuffleSplit drew 2 of 6 groups: far from 30 % of the items
    assert warning is not None and "largest holds 100 (83%)" in warning and "tile_pattern" in warning
    assert split_summary(refs, ["all"] * 120, None, "tile") == ("split: none (120 items)", None)


def test_engine_logs_the_split_and_warns_on_lumped_tiles(tmp_path, levir_dir, h, pm, caplog):
    spec = h.spec_dict(levir_dir, tmp_path / "o")
    spec["source"]["labels"] = "optional"
    spec["source"]["tile_pattern"] = r"^(?P<tile>[a-z]+)_"  # train / test / val: whole folders as one tile
    spec["evaluate"]["split"] = {"test": 0.3, "group_by": "tile"}
    with caplog.at_level("INFO", logger="satcore"):
        satcore.run(spec, progress=False, pm=pm)
    df = pd.read_parquet(tmp_path / "o" / "results.parquet")
    n_test = int((df["split"] == "test").sum())
    log = (tmp_path / "o" / "run.log").read_text()
    assert f"split: {len(df) - n_test} train, {n_test} test items (3 `tile` groups)" in log
    assert "evaluate.split asked for 30% test items but grouping by `tile` gave" in log


# ------------------------------------------------------------------------------------------ predefined splits

def test_splits_by_meta_uses_the_items_values():
    from satcore.evaluate.split import assign_split_names, splits_by_meta
    from satcore.spec.model import EvaluateSpec

    refs = [ItemRef(f"{s}/{i}", meta={"split": s}) for s in ("train", "val", "test") for i in range(3)]
    assert splits_by_meta(refs, "split") == [r.item_id.split("/")[0] for r in refs]
    spec = EvaluateSpec.model_validate({"split": {"by": "split"}})
    assert assign_split_names(refs, spec.split, seed=0) == splits_by_meta(refs, "split")
    # the random shape still goes through the grouped shuffle
    rnd = EvaluateSpec.model_validate({"split": {"test": 0.3, "group_by": "tile"}}).split
    tiles = _refs()
    assert assign_split_names(tiles, rnd, seed=7) == assign_splits(tiles, 0.3, "tile", 7)
    assert assign_split_names(tiles, None, seed=7) == ["all"] * len(tiles)


def test_splits_by_meta_names_the_bad_items_and_values():
    from satcore.evaluate.split import splits_by_meta

    refs = [ItemRef("a", meta={"split": "train"}), ItemRef("b", meta={"split": "validation"}),
            ItemRef("c", meta={})]
    with pytest.raises(ValueError, match=r"one of train, val, test: item 'b' has 'validation'; item 'c' has "
                       r"no `split`"):
        splits_by_meta(refs, "split")


def test_split_spec_shapes():
    from pydantic import ValidationError

    from satcore.spec.model import EvaluateSpec, SplitBySpec, SplitSpec

    assert isinstance(EvaluateSpec.model_validate({"split": {"by": "split"}}).split, SplitBySpec)
    assert isinstance(EvaluateSpec.model_validate({"split": {"test": 0.2}}).split, SplitSpec)
    assert EvaluateSpec.model_validate({"split": {"by": "split"}}).split.group_by is None
    with pytest.raises(ValidationError) as exc:
        EvaluateSpec.model_validate({"split": {"by": "split", "test": 0.3}})
    (err,) = exc.value.errors()
    assert err["type"] == "extra_forbidden" and err["loc"][-1] == "test"


def test_describe_predefined_split():
    from satcore.evaluate.split import describe_split
    from satcore.spec.model import SplitBySpec

    line, warning = describe_split([], ["train", "train", "val", "test"], SplitBySpec(by="split"))
    assert (line, warning) == ("split: by `split`: 2 train, 1 val, 1 test items", None)


def test_spec_file_with_both_split_shapes_says_which_key_is_wrong(tmp_path, levir_dir):
    spec = tmp_path / "s.yaml"
    spec.write_text(f"version: 1\nsource: {{type: folder-pairs, root: {levir_dir}}}\nsteps: [{{type: cva}}]\n"
                    "evaluate: {split: {by: split, test: 0.3}}\noutput: {dir: out}\n")
    with pytest.raises(satcore.errors.SpecError, match=r"s.yaml:4 evaluate.split.test: unknown key"):
        satcore.validate(spec)
