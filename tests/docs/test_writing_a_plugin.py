"""docs/writing-a-plugin.md: every python block runs, the examples pass their contracts and stay short.

The blocks run in order in one module (later blocks use earlier classes, as a reader's plugin would); a
block preceded by ``<!-- example: NAME -->`` is named for the checks below. The doc's ``Test*`` contract
classes are collected from here, so pytest runs every contract check on the doc's components.
"""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import numpy as np
import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "writing-a-plugin.md"
BLOCK = re.compile(r"(?:<!-- example: ([\w-]+) -->\n)?```python\n(.*?)```", re.S)
#: the longest a complete example component may be (non-blank lines, imports and docstrings included)
MAX_LINES = 40


def doc_blocks() -> list[tuple[str | None, str]]:
    return [(m.group(1), m.group(2)) for m in BLOCK.finditer(DOC.read_text(encoding="utf-8"))]


def exec_doc() -> types.ModuleType:
    """Run every python block of the doc in one fresh module (registered, so pydantic resolves names)."""
    mod = types.ModuleType("writing_a_plugin_doc")
    sys.modules[mod.__name__] = mod
    for i, (name, code) in enumerate(doc_blocks()):
        exec(compile(code, f"{DOC.name} block {i} ({name or 'unnamed'})", "exec"), mod.__dict__)
    return mod


DOCMOD = exec_doc()
# the doc's contract classes, collected by pytest from this module
TestDocBandDiffDetector = DOCMOD.TestBandDiffDetector
TestDocDominantBandRecognizer = DOCMOD.TestDominantBandRecognizer
TestDocGammaGenerator = DOCMOD.TestGammaGenerator


def test_every_python_block_is_named_and_ran():
    names = [n for n, _ in doc_blocks()]
    assert None not in names, "every python block of writing-a-plugin.md carries <!-- example: NAME -->"
    for needed in ("params", "items", "detector", "recognizer", "generator", "inputs", "report", "contracts"):
        assert needed in names


@pytest.mark.parametrize("name", ["detector", "recognizer", "generator"])
def test_examples_are_at_most_40_lines(name):
    [code] = [c for n, c in doc_blocks() if n == name]
    lines = [ln for ln in code.splitlines() if ln.strip()]
    assert len(lines) <= MAX_LINES, f"the {name} example has {len(lines)} lines; keep it to {MAX_LINES}"


def test_the_doc_names_no_removed_module():
    text = DOC.read_text(encoding="utf-8")
    for stale in ("satcore.engine.runner", "fig_to_img", "satcore.spec.loader", "dask_executor"):
        assert stale not in text


def test_detector_offers_the_builtin_threshold_rules():
    from satcore.components.thresholds import otsu_threshold
    from satcore.testing import make_change_pair

    params = DOCMOD.BandDiffParams
    assert params(threshold=0.3).threshold == 0.3 and params().threshold == "otsu"
    with pytest.raises(ValueError, match="cannot fit"):
        params.model_validate({"threshold": {"optimise": "f1"}})
    det = DOCMOD.BandDiffDetector(params(sigma=0))
    item = make_change_pair("p", seed=3)
    [res] = det.process(DOCMOD.Batch([item]))
    # independent reference: z-score each band by hand, Otsu from the skimage-equivalent helper
    a, b = (x.astype(np.float64) for x in item.pair_arrays())
    za = (a - a.mean(axis=(1, 2), keepdims=True)) / (a.std(axis=(1, 2), keepdims=True) + 1e-6)
    zb = (b - b.mean(axis=(1, 2), keepdims=True)) / (b.std(axis=(1, 2), keepdims=True) + 1e-6)
    score = 1 - np.exp(-np.abs(zb - za).mean(axis=0))
    np.testing.assert_allclose(res.score_map, score, rtol=1e-5, atol=1e-6)
    assert res.threshold == pytest.approx(otsu_threshold(res.score_map))
    # the planted square is what it finds
    iou = (res.label_map & item.label).sum() / (res.label_map | item.label).sum()
    assert iou > 0.9
    assert DOCMOD.satcore_register_detectors() == [DOCMOD.BandDiffDetector]


def test_recognizer_ranks_each_image_of_a_pair():
    from satcore.data import Item, Raster

    rec = DOCMOD.DominantBandRecognizer(DOCMOD.DominantBandParams())
    red = Raster(np.stack([np.full((2, 2), v, np.uint8) for v in (200, 50, 50)]))
    blue = red.with_array(red.array[::-1].copy())
    [res] = rec.process(DOCMOD.Batch([Item("p", [red, blue])]))
    assert [r["labels"][0] for r in res["images"]] == ["red", "blue"] and res["labels"][0] == "red"
    np.testing.assert_allclose(res["scores"], [200 / 300, 50 / 300, 50 / 300])


def test_generator_keeps_the_georeference():
    from satcore.testing import make_target_items
    from satcore.testing.contracts import check_generated

    item = make_target_items(1)[0]
    gen = DOCMOD.GammaGenerator(DOCMOD.GammaParams(gamma=2.0))
    [res] = gen.process(DOCMOD.Batch([item]))
    [out] = res["images"]
    assert check_generated(res, item) == [] and out.crs == item.reference.crs is not None
    np.testing.assert_allclose(out.array, (item.reference.array / 255.0) ** 2, rtol=1e-5)


def test_several_inputs_example_concatenates_in_input_order():
    from satcore.testing import make_scene_item

    item = make_scene_item("s")
    upstream = {"spectral": {"features": np.ones((1, 2)), "feature_names": ["a", "b"]},
                "clip": {"features": np.zeros((1, 3)), "feature_names": ["c0", "c1", "c2"]}}
    ext = DOCMOD.ConcatFeaturesExtractor(DOCMOD.ConcatFeaturesExtractor.params_model())
    [res] = ext.process(DOCMOD.Batch([item], [upstream]))
    np.testing.assert_array_equal(res["features"], [[1, 1, 0, 0, 0]])
    assert res["feature_names"] == ["spectral.a", "spectral.b", "clip.c0", "clip.c1", "clip.c2"]


def test_report_section_example_draws_a_figure(tmp_path):
    pd = pytest.importorskip("pandas")
    pytest.importorskip("matplotlib")
    results = pd.DataFrame({"change.score": [0.1, 0.4, 0.9, None]})
    [(title, html)] = DOCMOD.BandDiffWithReport.report_sections(tmp_path, "change", results)
    assert title == "change: scores" and html.startswith('<img alt="change score histogram"')


def test_doc_components_use_the_extension_points_as_declared():
    from satcore.components.checks import check_extension_points

    for cls in (DOCMOD.BandDiffDetector, DOCMOD.DominantBandRecognizer, DOCMOD.GammaGenerator,
                DOCMOD.ConcatFeaturesExtractor, DOCMOD.BandDiffWithReport):
        assert check_extension_points(cls) == []
