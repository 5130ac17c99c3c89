"""End-to-end specs in tests/conf/*.yaml run through the CLI and write the whole output contract."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import rasterio

CONF = Path(__file__).parent / "conf"
SPECS = sorted(CONF.glob("*.yaml"))


def _satcore(*args: str) -> subprocess.CompletedProcess[str]:
    code = "import sys; from satcore.cli import main; sys.argv = ['satcore', *sys.argv[1:]]; main()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=600)


def test_there_are_specs() -> None:
    assert len(SPECS) >= 2


@pytest.mark.parametrize("spec", SPECS, ids=[s.stem for s in SPECS])
def test_spec_runs_end_to_end(spec: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    v = _satcore("validate", str(spec))
    assert v.returncode == 0, v.stderr
    r = _satcore("run", str(spec), "--quiet", "--set", f"output.dir={out}")
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    table = pd.read_parquet(out / "results.parquet")
    assert table["item_id"].is_unique
    assert manifest["items"]["total"] == len(table)
    errors = [json.loads(x) for x in (out / "errors.jsonl").read_text().splitlines() if x.strip()]
    assert len(errors) == int(table["error"].notna().sum())
    metrics = json.loads((out / "metrics.json").read_text())
    step_ids = [s["id"] for s in manifest["spec"]["steps"]]
    assert list(metrics["steps"]) == step_ids  # detector steps in spec order
    ok = table[table["error"].isna()]
    for iid in ok["item_id"]:
        with rasterio.open(out / "maps" / f"{iid}.tif") as ds:
            assert list(ds.descriptions) == [f"{s}.{b}" for s in step_ids for b in ("score", "label")]
            first = manifest["spec"]["source"]
            if first["type"] == "manifest":  # georeferenced inputs keep their CRS
                assert ds.crs is not None and ds.crs.to_epsg() in (32650, 32651)
    assert (out / "report.html").exists() == manifest["spec"]["output"]["report"]
