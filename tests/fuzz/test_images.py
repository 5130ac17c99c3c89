"""Fuzzed images (hypothesis, bounded for CI): each read is a clean per-item error or an accepted item.

The cases, and what counts as clean, are those of ``tools/fuzz_images.py`` (which runs any number of them,
each in a child process with time and memory limits); here hypothesis draws and shrinks them in-process.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_TOOL = Path(__file__).resolve().parents[2] / "tools" / "fuzz_images.py"
_spec = importlib.util.spec_from_file_location("fuzz_images", _TOOL)
assert _spec is not None and _spec.loader is not None
fuzz = importlib.util.module_from_spec(_spec)
sys.modules["fuzz_images"] = fuzz
_spec.loader.exec_module(fuzz)

CASES = st.fixed_dictionaries({**{k: st.sampled_from(v) for k, v in fuzz.CHOICES.items()},
                               "k": st.integers(0, fuzz.K_MAX - 1)})


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(case=CASES)
def test_a_fuzzed_image_is_a_clean_error_or_an_accepted_item(case, tmp_path_factory):
    outcome = fuzz.run_case(case, tmp_path_factory.mktemp("case"))  # raises on a bug
    assert outcome.split(":")[0] in ("accepted", "error", "problem"), outcome


@pytest.mark.parametrize("fmt", ["png", "tif", "jpg"])
@pytest.mark.parametrize("role", ["image", "label"])
def test_every_chunk_boundary_truncation_fails_the_item(fmt, role, tmp_path):
    """Cut at each PNG chunk / TIFF block / JPEG marker boundary: always a failed item, never data."""
    base = {"fmt": fmt, "dtype": "uint8", "bands": 3, "height": 16, "width": 16, "nodata": "none",
            "special": "none", "mutation": "none", "role": role, "k": 1}
    probe = tmp_path / f"probe.{fmt}"
    fuzz.write_image(probe, base if role == "image" else {**base, "fmt": "png" if fmt == "jpg" else fmt})
    data = probe.read_bytes()
    n = (len(fuzz.png_boundaries(data)) if probe.suffix == ".png" else
         len(fuzz.tiff_boundaries(probe)) if probe.suffix == ".tif" else 8)
    assert n >= 3
    for k in range(n):
        out = fuzz.run_case({**base, "mutation": "truncate_chunk", "k": k}, tmp_path / f"c{k}")
        assert out.startswith(("error:", "problem:")), (k, out)


def test_the_tool_runs_cases_in_limited_children():
    outcome, secs, rss_kib = fuzz.run_in_child(
        {"fmt": "png", "dtype": "uint8", "bands": 3, "height": 7, "width": 5, "nodata": "none",
         "special": "none", "mutation": "huge_header", "role": "image", "k": 3}, timeout_s=20)
    assert outcome == "error:ComponentError" and secs < 20 and 0 < rss_kib < (1 << 20)
