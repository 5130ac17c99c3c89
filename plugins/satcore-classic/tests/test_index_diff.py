"""index-diff: spectral indices against their formulas, band naming and the missing-band error."""

from __future__ import annotations

import numpy as np
import pytest
from satcore_classic.detectors import IndexDiffDetector
from sklearn.metrics import roc_auc_score

from satcore.components import Batch
from satcore.data import SENTINEL2_BANDS
from satcore.errors import ComponentError

LANDSAT = ("blue", "green", "red", "nir", "swir1", "swir2")


def _landsat_pair(seed: int = 0, size: int = 48) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reflectance-like 6-band pair; a square loses its vegetation (nir down, red up) in B."""
    rng = np.random.default_rng(seed)
    a = rng.uniform(20, 120, (6, size, size))
    b = a + rng.normal(0, 2, a.shape)
    truth = np.zeros((size, size), bool)
    truth[10:26, 12:30] = True
    b[3][truth] *= 0.5  # nir
    b[2][truth] *= 1.8  # red
    return a, b, truth


def _nd(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return (x - y) / (x + y)


def test_ndvi_difference_matches_the_formula(build, synth):
    a, b, truth = _landsat_pair()
    item = synth.make_item(a, b, truth, band_names=LANDSAT)
    det = build(IndexDiffDetector, index="ndvi", smooth=0, morphology=0, threshold=0.1).process(
        Batch([item])
    )[0]
    m = np.abs(_nd(b[3], b[2]) - _nd(a[3], a[2]))
    np.testing.assert_allclose(det.score_map, m / (m + 0.1), atol=1e-5)
    assert det.extra["indices"] == "ndvi"
    assert roc_auc_score(truth.ravel(), det.score_map.ravel()) > 0.97


@pytest.mark.parametrize(("index", "x", "y"), [("ndwi", 1, 3), ("ndbi", 4, 3)])
def test_ndwi_and_ndbi_match_their_formulas(build, synth, index, x, y):
    a, b, _ = _landsat_pair(seed=1)
    item = synth.make_item(a, b, band_names=LANDSAT)
    det = build(IndexDiffDetector, index=index, smooth=0, morphology=0, threshold=0.05).process(
        Batch([item])
    )[0]
    m = np.abs(_nd(b[x], b[y]) - _nd(a[x], a[y]))
    np.testing.assert_allclose(det.score_map, m / (m + 0.05), atol=1e-5)


def test_auto_combines_every_available_index(build, synth):
    a, b, _ = _landsat_pair(seed=2)
    item = synth.make_item(a, b, band_names=LANDSAT)
    det = build(IndexDiffDetector, smooth=0, morphology=0, threshold=0.1).process(Batch([item]))[0]
    assert det.extra["indices"] == "ndvi,ndwi,ndbi"
    d = [_nd(b[i], b[j]) - _nd(a[i], a[j]) for i, j in ((3, 2), (1, 3), (4, 3))]
    m = np.sqrt(sum(x * x for x in d))
    np.testing.assert_allclose(det.score_map, m / (m + 0.1), atol=1e-5)
    # RGBN has no SWIR: auto uses NDVI and NDWI only
    rgbn = synth.make_item(a[[2, 1, 0, 3]], b[[2, 1, 0, 3]], band_names=("red", "green", "blue", "nir"))
    assert build(IndexDiffDetector).process(Batch([rgbn]))[0].extra["indices"] == "ndvi,ndwi"


def test_sentinel2_band_names_are_recognised(build, synth):
    rng = np.random.default_rng(3)
    a = rng.uniform(100, 3000, (13, 16, 16))
    b = rng.uniform(100, 3000, (13, 16, 16))
    item = synth.make_item(a, b, band_names=SENTINEL2_BANDS)
    det = build(IndexDiffDetector, index="ndvi", smooth=0, morphology=0, threshold=0.2).process(
        Batch([item])
    )[0]
    m = np.abs(_nd(b[7], b[3]) - _nd(a[7], a[3]))  # B08, B04
    np.testing.assert_allclose(det.score_map, m / (m + 0.2), atol=1e-5)


def test_missing_bands_raise_a_component_error_that_says_how_to_name_them(build, synth):
    a, b, _ = _landsat_pair()
    rgb = synth.make_item(a[:3], b[:3], item_id="rgb-item")  # default names: red, green, blue
    with pytest.raises(ComponentError) as e:
        build(IndexDiffDetector, index="ndvi").process(Batch([rgb]))
    msg = str(e.value)
    assert (
        "NDVI" in msg and "missing: nir" in msg and "bands:" in msg and "[blue, green, red, nir, swir1" in msg
    )
    assert e.value.item_id == "rgb-item" and e.value.step == "index-diff"
    with pytest.raises(ComponentError, match=r"missing: nir, swir1"):
        build(IndexDiffDetector, index="auto").process(Batch([rgb]))
    unnamed = synth.make_item(a, b)  # six bands without names: b1..b6
    with pytest.raises(ComponentError, match=r"NDBI needs the bands swir1, nir.*'b1'"):
        build(IndexDiffDetector, index="ndbi").process(Batch([unnamed]))


def test_zero_denominator_gives_zero_index_not_nan(build, synth):
    a = np.zeros((4, 8, 8))
    b = np.zeros((4, 8, 8))
    b[:, :4] = 10.0
    item = synth.make_item(a, b, band_names=("red", "green", "blue", "nir"))
    det = build(IndexDiffDetector, index="ndvi").process(Batch([item]))[0]
    assert np.isfinite(det.score_map).all() and 0 <= det.score <= 1
