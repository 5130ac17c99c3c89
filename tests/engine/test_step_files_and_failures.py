"""The engine serves every kind: several inputs, per-step failures, files steps make, nothing dropped."""

from __future__ import annotations

import json
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from affine import Affine

import satcore
from satcore.components import Component, Detection, Detector, Extractor, Generator
from satcore.components.base import MAX_LIST_CELL, scalar_columns, table_cells
from satcore.data import Raster
from satcore.errors import ComponentError

# ------------------------------------------------------------------------------------------ test components


class BandMeans(Extractor):
    """Per-image band means: features (n_images × bands)."""

    name = "t-band-means"
    produces: ClassVar[tuple[str, ...]] = ("features",)

    def process(self, batch: Any) -> list[Any]:
        out = []
        for item in batch:
            f = np.stack([im.array.astype(np.float64).mean(axis=(1, 2)) for im in item.images])
            out.append({"features": f, "feature_names": [f"mean_{b}" for b in item.images[0].band_names]})
        return out


class BandMax(Extractor):
    """Per-image band maxima: features (n_images × bands); fails on items listed in ``fail_on``."""

    name = "t-band-max"
    produces: ClassVar[tuple[str, ...]] = ("features",)

    def process(self, batch: Any) -> list[Any]:
        out = []
        for item in batch:
            if item.item_id == "img001":
                raise ValueError("no maximum for this one")
            f = np.stack([im.array.astype(np.float64).max(axis=(1, 2)) for im in item.images])
            out.append({"features": f, "feature_names": [f"max_{b}" for b in item.images[0].band_names]})
        return out


class Concat(Extractor):
    """Concatenates its inputs' features in input order, names prefixed with the step id."""

    name = "t-concat"
    consumes: ClassVar[tuple[str, ...]] = ("features",)
    produces: ClassVar[tuple[str, ...]] = ("features",)

    def process(self, batch: Any) -> list[Any]:
        out = []
        for _item, ins in batch.with_inputs():
            assert isinstance(ins, dict)
            out.append({"features": np.concatenate([v["features"] for v in ins.values()], axis=1),
                        "feature_names": [f"{k}.{n}" for k, v in ins.items() for n in v["feature_names"]],
                        "n_inputs": len(ins)})
        return out


class Brighten(Generator):
    """Image → image (+ a text): the after image brightened, without a georeference of its own."""

    name = "t-brighten"

    def process(self, batch: Any) -> list[Any]:
        out = []
        for item in batch:
            after = item.images[-1]
            plot = self.artifacts_dir() / "seen.txt"  # a step's own file
            plot.write_text("x")
            bright = Raster((after.array // 2 + 100).astype(np.uint8), band_names=("r", "g", "b"))
            out.append({"image": bright,
                        "texts": [f"brightened {item.item_id}"], "mean": float(after.array.mean())})
        return out


class TwoTiles(Generator):
    """Two small rasters per item (not the input's shape: no georeference)."""

    name = "t-two-tiles"

    def process(self, batch: Any) -> list[Any]:
        return [{"images": [Raster(np.full((1, 4, 4), k, np.uint8)) for k in range(2)]} for _ in batch]


class Odd(Extractor):
    """Returns everything a component may return, and (with a flag) something no cell holds."""

    name = "t-odd"

    def process(self, batch: Any) -> list[Any]:
        return [{"vec": np.arange(3.0), "long": list(range(MAX_LIST_CELL + 1)),
                 "nested": {"a": [1, {"b": 2}]}, "short": [1, 2],
                 "obj": object() if item.item_id == "img002" else None} for item in batch]


class MeanDiff(Detector):
    """Mean-band difference: an image-level detection that reads the source."""

    name = "t-mean-diff"

    def process(self, batch: Any) -> list[Any]:
        out = []
        for item in batch:
            a, b = item.pair_arrays()
            s = np.abs(b.mean(0) - a.mean(0)) / 255.0
            out.append(Detection(score=float((s > 0.2).mean()), label=int((s > 0.2).any())))
        return out


class TextEcho(Extractor):
    """Reads a text-only item's text."""

    name = "t-text-echo"

    def process(self, batch: Any) -> list[Any]:
        return [{"length": len(item.text or ""), "kind": item.kind} for item in batch]


def _pm(h: Any, *classes: type[Component]) -> Any:
    from satcore.plugins import get_plugin_manager

    m = get_plugin_manager(fresh=True, entrypoints=False)
    hooks: dict[str, list[type[Component]]] = {}
    for c in classes:
        hooks.setdefault(f"satcore_register_{c.kind}s", []).append(c)
    m.register_plugin(h.plugin_module("t_engine_plugin", **hooks), "t-engine", "satcore-t-engine", "0.0.1")
    return m


def _spec(root: Any, out: Any, steps: list[dict[str, Any]], **kw: Any) -> dict[str, Any]:
    return {"version": 1, "source": {"type": "folder-pairs", "root": str(root)}, "steps": steps,
            "output": {"dir": str(out), "report": False, "maps": False}, "evaluate": {"bootstrap": 0},
            "execution": {"batch_size": 2, "loader_workers": 0, **kw}}


def _errors(out: Any) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (out / "errors.jsonl").read_text().splitlines()]


# ------------------------------------------------------------------------------------------ several inputs


def test_a_two_input_step_gets_a_mapping_and_combines_features(tmp_path, h):
    root = tmp_path / "data"
    ids = h.make_pairs(root, 3)
    steps = [{"id": "means", "type": "t-band-means"},
             {"id": "maxes", "type": "t-band-max", "input": "source"},
             {"id": "both", "type": "t-concat", "input": ["means", "maxes"]}]
    out = tmp_path / "out"
    res = satcore.run(_spec(root, out, steps), progress=False, pm=_pm(h, BandMeans, BandMax, Concat))
    df = res.results().set_index("item_id")
    import rasterio

    for iid in ids:
        if iid == "img001":  # t-band-max fails there, and so its dependant
            continue
        imgs = [rasterio.open(root / d / f"{iid}.png").read().astype(np.float64) for d in ("A", "B")]
        want = np.concatenate([np.stack([a.mean(axis=(1, 2)) for a in imgs]),
                               np.stack([a.max(axis=(1, 2)) for a in imgs])], axis=1)
        got = np.load(out / df.loc[iid, "both.features.path"])
        np.testing.assert_allclose(got, want)
        assert list(df.loc[iid, "both.feature_names"]) == [
            *(f"means.mean_{b}" for b in ("red", "green", "blue")),
            *(f"maxes.max_{b}" for b in ("red", "green", "blue"))]
        assert df.loc[iid, "both.n_inputs"] == 2
        assert df.loc[iid, "both.features.path"] == f"artifacts/both/{iid}.features.npy"


# ------------------------------------------------------------------------------------------ per-step errors


def test_a_failing_step_fails_only_itself_and_its_dependants(tmp_path, h):
    root = tmp_path / "data"
    h.make_pairs(root, 3)
    steps = [{"id": "means", "type": "t-band-means"},
             {"id": "maxes", "type": "t-band-max", "input": "source"},
             {"id": "both", "type": "t-concat", "input": ["means", "maxes"]},
             {"id": "diff", "type": "t-mean-diff", "input": "source"}]
    out = tmp_path / "out"
    m = _pm(h, BandMeans, BandMax, Concat, MeanDiff)
    res = satcore.run(_spec(root, out, steps), progress=False, pm=m)
    assert (res.items_ok, res.items_failed) == (2, 1)
    row = res.results().set_index("item_id").loc["img001"]
    # the steps that do not read `maxes` kept their outputs for the item
    assert isinstance(row["means.features.path"], str) and list(row["means.feature_names"])
    assert row["diff.score"] == 0.0 and row["diff.label"] == 0
    assert row["truth.change"] == 0
    # the failed step and its dependant have none
    for col in ("maxes.features.path", "maxes.feature_names", "both.features.path", "both.feature_names"):
        assert row[col] is None or row[col] is pd.NA, col
    assert row["error"] == "step 'maxes': no maximum for this one"
    assert _errors(out) == [{"item_id": "img001", "step": "maxes", "error_type": "ValueError",
                             "message": "no maximum for this one"}]
    parts = pd.concat([pq.read_table(p).to_pandas() for p in sorted((out / "parts").glob("*.parquet"))])
    failed = parts.set_index("item_id").loc["img001", "_failed_steps"]
    assert list(failed) == ["maxes", "both"]
    # an item with a failure is retried whole by --resume
    res2 = satcore.run(_spec(root, out, steps), resume=True, progress=False, pm=m)
    assert (res2.items_ok, res2.items_failed, res2.items_skipped) == (0, 1, 2)


def test_on_error_fail_still_stops_at_the_first_failing_step(tmp_path, h):
    root = tmp_path / "data"
    h.make_pairs(root, 3)
    steps = [{"id": "maxes", "type": "t-band-max"}]
    with pytest.raises(satcore.errors.RunStopped, match="item 'img001' failed in step 'maxes'"):
        satcore.run(_spec(root, tmp_path / "out", steps, on_error="fail"), progress=False, pm=_pm(h, BandMax))


# ------------------------------------------------------------------------------------------ files steps make


def _georeferenced_pairs(h: Any, root: Any, n: int) -> Affine:
    tr = Affine(10, 0, 500000, 0, -10, 4000000)
    rng = np.random.default_rng(0)
    for i in range(n):
        a = rng.integers(0, 100, (3, 16, 16), dtype=np.uint8)
        h.write_raster(root / "A" / f"g{i}.tif", a, "EPSG:32633", tr)
        h.write_raster(root / "B" / f"g{i}.tif", a, "EPSG:32633", tr)
        h.write_raster(root / "label" / f"g{i}.tif", np.zeros((16, 16), np.uint8), "EPSG:32633", tr)
    return tr


def test_generated_geotiffs_keep_the_input_georeference_and_their_paths_are_in_the_table(tmp_path, h):
    import rasterio

    root = tmp_path / "data"
    tr = _georeferenced_pairs(h, root, 2)
    steps = [{"id": "bright", "type": "t-brighten"},
             {"id": "tiles", "type": "t-two-tiles", "input": "source"}]
    out = tmp_path / "out"
    m = _pm(h, Brighten, TwoTiles)
    res = satcore.run(_spec(root, out, steps), progress=False, pm=m)
    df = res.results().set_index("item_id")
    assert res.items_failed == 0
    for iid in ("g0", "g1"):
        assert list(df.loc[iid, "bright.path"]) == [f"generated/{iid}/bright.tif",
                                                    f"generated/{iid}/bright.txt"]
        with rasterio.open(out / "generated" / iid / "bright.tif") as src:
            assert src.crs.to_string() == "EPSG:32633" and src.transform == tr
            assert src.descriptions == ("r", "g", "b")
            with rasterio.open(root / "B" / f"{iid}.tif") as b:
                np.testing.assert_array_equal(src.read(), b.read() // 2 + 100)
        assert (out / "generated" / iid / "bright.txt").read_text() == f"brightened {iid}"
        assert list(df.loc[iid, "bright.texts"]) == [f"brightened {iid}"]
        assert isinstance(df.loc[iid, "bright.mean"], float)
        assert list(df.loc[iid, "tiles.path"]) == [f"generated/{iid}/tiles.0.tif",
                                                   f"generated/{iid}/tiles.1.tif"]
        with rasterio.open(out / "generated" / iid / "tiles.1.tif") as src:
            assert src.crs is None and src.read().max() == 1  # not the input's shape: no georeference
    assert (out / "artifacts" / "bright" / "seen.txt").exists()
    # --overwrite removes both folders (and a rerun writes them again)
    (out / "generated" / "stale.tif").write_bytes(b"x")
    (out / "artifacts" / "stale").mkdir()
    satcore.run(_spec(root, out, [{"id": "tiles", "type": "t-two-tiles"}]), overwrite=True, progress=False,
                pm=m)
    assert not (out / "generated" / "stale.tif").exists() and not (out / "artifacts").exists()
    assert (out / "generated" / "g0" / "tiles.0.tif").exists()


def test_a_run_that_stopped_before_any_item_with_empty_output_folders_is_reused(tmp_path):
    from satcore.engine.run_folder import OUTPUT_NAMES, prepare_output

    assert {"generated", "artifacts"} <= OUTPUT_NAMES
    out = tmp_path / "out"
    out.mkdir()
    (out / "manifest.json").write_text(json.dumps({"status": "stopped", "items": {}}))
    (out / "generated").mkdir()
    (out / "artifacts").mkdir()
    assert prepare_output(out, False, False, "h") is not None
    (out / "manifest.json").write_text(json.dumps({"status": "stopped", "items": {}}))
    (out / "generated").mkdir()
    (out / "generated" / "x.tif").write_bytes(b"x")
    with pytest.raises(satcore.errors.UsageError, match="not empty"):
        prepare_output(out, False, False, "h")


# ------------------------------------------------------------------------------------------ nothing vanishes


def test_table_cells_stores_or_refuses_every_value():
    cells, arrays = table_cells({"a": np.float32(1.5), "s": "x", "n": None, "short": (1, np.int64(2)),
                                 "zero_d": np.array(3), "arr": np.ones((2, 2)), "long": list(range(65)),
                                 "nested": [[1, 2], {"k": float("nan")}], "d": {"x": np.arange(2)}})
    assert cells == {"a": 1.5, "s": "x", "n": None, "short": [1, 2], "zero_d": 3,
                     "nested": '[[1, 2], {"k": null}]', "d": '{"x": [0, 1]}'}
    assert set(arrays) == {"arr", "long"} and arrays["long"].tolist() == list(range(65))
    assert scalar_columns({"arr": np.ones(2), "x": 1}).keys() == {"arr", "x"}  # arrays left for the engine
    with pytest.raises(ComponentError, match=r"output 'r' is a satcore.data.Raster.*self.artifacts_dir\(\)"):
        table_cells({"r": Raster(np.zeros((1, 2, 2)))})
    with pytest.raises(ComponentError, match="output 'o' is a numpy array of Python objects"):
        table_cells({"o": np.array([object()])})


def test_arrays_long_lists_and_nested_values_are_stored_and_other_types_fail_the_step(tmp_path, h):
    root = tmp_path / "data"
    h.make_pairs(root, 3)
    out = tmp_path / "out"
    res = satcore.run(_spec(root, out, [{"id": "odd", "type": "t-odd"}]), progress=False, pm=_pm(h, Odd))
    df = res.results().set_index("item_id")
    np.testing.assert_array_equal(np.load(out / df.loc["img000", "odd.vec.path"]), np.arange(3.0))
    assert np.load(out / df.loc["img000", "odd.long.path"]).tolist() == list(range(MAX_LIST_CELL + 1))
    assert json.loads(df.loc["img000", "odd.nested"]) == {"a": [1, {"b": 2}]}
    assert list(df.loc["img000", "odd.short"]) == [1, 2]
    assert (res.items_ok, res.items_failed) == (2, 1)
    err = df.loc["img002", "error"]
    assert err.startswith("step 'odd': output 'obj' is a builtins.object, which a results.parquet cell")
    assert pd.isna(df.loc["img002", "odd.vec.path"])


# ------------------------------------------------------------------------------------------ text-only items


def test_text_only_items_run_through_the_steps(tmp_path, h):
    csv = tmp_path / "prompts.csv"
    csv.write_text("item_id,text\nt1,a harbour\nt2,fields at dawn\n")
    spec = {"version": 1, "source": {"type": "text", "path": str(csv)},
            "steps": [{"id": "echo", "type": "t-text-echo"}],
            "output": {"dir": str(tmp_path / "out"), "report": False}, "evaluate": {"bootstrap": 0}}
    res = satcore.run(spec, progress=False, pm=_pm(h, TextEcho))
    df = res.results().set_index("item_id")
    assert res.items_failed == 0
    assert df["echo.length"].to_dict() == {"t1": 9, "t2": 14}
    assert set(df["echo.kind"]) == {"text"}
