"""The quickstart's outputs equal a stored copy: restructuring the engine changes no result."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pandas.testing as pdt

import satcore

REPO = Path(__file__).resolve().parents[1]
GOLDEN = REPO / "tests" / "golden" / "quickstart"


def _close(a, b, path="metrics"):
    """Equal JSON trees, floats to 1e-9 relative (kmeans and BLAS sums may differ in the last bits)."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), f"{path}: keys {sorted(a)} != {sorted(b)}"
        for k in a:
            _close(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), f"{path}: {a} != {b}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _close(x, y, f"{path}[{i}]")
    elif isinstance(a, float) or isinstance(b, float):
        assert a is not None and b is not None, f"{path}: {a} != {b}"
        assert math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12), f"{path}: {a} != {b}"
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


def test_quickstart_outputs_equal_the_stored_copy(tmp_path):
    res = satcore.run(REPO / "examples" / "quickstart.yaml", overrides={"output.dir": str(tmp_path / "q")},
                      progress=False)
    got = pd.read_parquet(tmp_path / "q" / "results.parquet")
    want = pd.read_parquet(GOLDEN / "results.parquet")
    # messages name files by absolute path: the stored copy says <repo>/ for this checkout's root
    got["error"] = got["error"].str.replace(f"{REPO.as_posix()}/", "<repo>/", regex=False)
    assert list(got.columns) == list(want.columns)
    pdt.assert_frame_equal(got, want, check_exact=False, rtol=1e-9)
    _close(json.loads((tmp_path / "q" / "metrics.json").read_text()),
           json.loads((GOLDEN / "metrics.json").read_text()))
    errors = (tmp_path / "q" / "errors.jsonl").read_text().replace(f"{REPO.as_posix()}/", "<repo>/")
    assert errors == (GOLDEN / "errors.jsonl").read_text()
    assert res.items_ok == 11 and res.items_failed == 1


def test_the_comparison_can_fail(tmp_path):
    """A changed number is caught (the tolerance is not so wide that it passes anything)."""
    m = json.loads((GOLDEN / "metrics.json").read_text())
    changed = json.loads(json.dumps(m))
    step = next(iter(changed["steps"]))
    changed["steps"][step]["all"]["pixel"]["auc"] += 1e-6
    try:
        _close(changed, m)
    except AssertionError:
        return
    raise AssertionError("a change of 1e-6 in an AUC passed the comparison")
