"""The spectral block against hand formulas over the concatenated pixels and scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import mean_absolute_error, mean_squared_error

from satcore.evaluate.blocks import SpectralBlock, spectral_record
from satcore.evaluate.blocks.spectral import EPS


def _items(seed: int, n: int = 6, bands: int = 4):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        h, w = rng.integers(3, 9, 2)
        t = rng.uniform(0, 3000, (bands, h, w))
        p = t + rng.normal(0, 300, t.shape)
        p[0, 0, 0] = -5.0  # a negative value: the pixel is left out of SID (its inputs must be non-negative)
        valid = rng.random((h, w)) > 0.2
        t[1, -1, -1] = np.nan  # a nodata value: the pixel is left out
        out.append((t, p, valid))
    return out


def _reference(items, ratio=1.0):
    xs, ys = [], []
    for t, p, v in items:
        m = v & np.all(np.isfinite(t) & np.isfinite(p), axis=0)
        xs.append(t[:, m])
        ys.append(p[:, m])
    x, y = np.concatenate(xs, axis=1).T, np.concatenate(ys, axis=1).T  # (pixels, bands)
    cos = np.sum(x * y, 1) / (np.linalg.norm(x, axis=1) * np.linalg.norm(y, axis=1))
    angle = np.degrees(np.arccos(np.clip(cos, -1, 1))).mean()
    pos = np.all(x >= 0, 1) & np.all(y >= 0, 1)
    xp, yp = x[pos], y[pos]
    pp = xp / xp.sum(1, keepdims=True) + EPS
    qq = yp / yp.sum(1, keepdims=True) + EPS
    sid = np.mean(np.sum(pp * np.log(pp / qq) + qq * np.log(qq / pp), 1))  # KL(p||q) + KL(q||p)
    rmse_b = np.sqrt(np.mean((y - x) ** 2, 0))
    ergas = 100 * ratio * np.sqrt(np.mean((rmse_b / x.mean(0)) ** 2))
    return {"spectral_angle_deg": angle, "sid": sid, "sid_pixels": int(pos.sum()), "ergas": ergas,
            "mae": mean_absolute_error(x, y), "mse": mean_squared_error(x, y)}


@pytest.mark.parametrize("seed", range(4))
def test_equals_hand_formulas_over_all_pixels(seed, block_result):
    items = _items(seed)
    recs = {f"s{i}": spectral_record(t, p, valid=v) for i, (t, p, v) in enumerate(items)}
    out = block_result(SpectralBlock, recs, units="reflectance ×10000", ratio=0.5)
    ref = _reference(items, ratio=0.5)
    for k, v in ref.items():
        assert out[k] == pytest.approx(v, rel=1e-10), k
    assert out["units"] == "reflectance ×10000"
    assert out["sid_pixels"] < out["pixels"]  # pixels with a negative value are left out of SID
    # the older setting name gives the same ERGAS
    assert block_result(SpectralBlock, recs, resolution_ratio=0.5)["ergas"] == pytest.approx(ref["ergas"])
    assert out["items"] == len(items)


def test_known_cases(block_result):
    x = np.array([[[1.0, 0.0]], [[0.0, 2.0]]])  # 2 bands, 1×2 pixels: (1,0) and (0,2)
    same = block_result(SpectralBlock, {"a": spectral_record(x, x)})
    assert same["spectral_angle_deg"] == 0 and same["sid"] == 0 and same["ergas"] == 0 and same["mse"] == 0
    orth = np.array([[[0.0, 2.0]], [[1.0, 0.0]]])
    out = block_result(SpectralBlock, {"a": spectral_record(x, orth)})
    assert out["spectral_angle_deg"] == pytest.approx(90.0)
    scaled = block_result(SpectralBlock, {"a": spectral_record(x + 1, 2 * (x + 1))})
    assert scaled["spectral_angle_deg"] == pytest.approx(0.0, abs=1e-5)  # arccos near 1: ~1e-6°
    assert scaled["sid"] == pytest.approx(0.0, abs=1e-12)
    assert scaled["mse"] > 0
    assert out["units"] == "data units"


@pytest.mark.parametrize("seed", range(2))
def test_order_does_not_matter(seed, block_result):
    items = _items(seed, n=10)
    recs = {f"s{i}": spectral_record(t, p, valid=v) for i, (t, p, v) in enumerate(items)}
    assert block_result(SpectralBlock, recs, seed=seed) == block_result(SpectralBlock, recs)


def test_a_wrong_raster_moves_the_numbers_as_the_reference_does(block_result):
    items = _items(7)
    t, p, v = items[0]
    bad = [(t, p + 500.0, v), *items[1:]]
    good_out = block_result(SpectralBlock, {f"s{i}": spectral_record(*it[:2], valid=it[2])
                                            for i, it in enumerate(items)})
    bad_out = block_result(SpectralBlock, {f"s{i}": spectral_record(*it[:2], valid=it[2])
                                           for i, it in enumerate(bad)})
    ref = _reference(bad)
    for k, val in ref.items():
        assert bad_out[k] == pytest.approx(val, rel=1e-10), k
    assert bad_out["mae"] > good_out["mae"] and bad_out["ergas"] > good_out["ergas"]


def test_undefined_values_are_null_with_reasons(block_result):
    x = np.ones((2, 3, 3))
    out = block_result(SpectralBlock, {"a": spectral_record(x, x, valid=np.zeros((3, 3), bool))})
    for k in ("spectral_angle_deg", "sid", "ergas", "mae", "mse"):
        assert out[k] is None and out[f"{k}_reason"]
    z = np.zeros((2, 3, 3))
    out = block_result(SpectralBlock, {"a": spectral_record(z, x)})
    assert out["ergas"] is None and "mean 0" in out["ergas_reason"]
    assert out["spectral_angle_deg"] is None and out["mse"] == 1.0
    out = block_result(SpectralBlock, {"a": spectral_record(x, x), "b": spectral_record(np.ones((3, 2, 2)),
                                                                                       np.ones((3, 2, 2)))})
    assert out["ergas"] is None and "band count" in out["ergas_reason"]
    assert out["mse"] == 0.0
    assert spectral_record(None, x) is None
    with pytest.raises(ValueError, match="same shape"):
        spectral_record(x, np.ones((3, 3, 3)))


def test_hand_computed_sid_ergas_and_angle(block_result):
    # two pixels, three bands: t = (1, 2, 1) and (2, 2, 4); p = (2, 2, 0) and (2, 2, 4)
    t = np.array([[[1.0, 2.0]], [[2.0, 2.0]], [[1.0, 4.0]]])
    p = np.array([[[2.0, 2.0]], [[2.0, 2.0]], [[0.0, 4.0]]])
    out = block_result(SpectralBlock, {"a": spectral_record(t, p)}, ratio=0.25)
    # angle: pixel 1 cos = (2 + 4 + 0) / (sqrt 6 · sqrt 8) = 6 / sqrt 48; pixel 2: 0°
    assert out["spectral_angle_deg"] == pytest.approx(np.degrees(np.arccos(6 / np.sqrt(48))) / 2)
    # SID, pixel 1: p = (1/4, 1/2, 1/4), q = (1/2, 1/2, 0) (+ EPS); pixel 2: 0
    pp, qq = np.array([0.25, 0.5, 0.25]) + EPS, np.array([0.5, 0.5, 0.0]) + EPS
    assert out["sid"] == pytest.approx(np.sum((pp - qq) * np.log(pp / qq)) / 2, rel=1e-12)
    # ERGAS: band RMSEs (sqrt(1/2), 0, sqrt(1/2)) over band means (1.5, 2, 2.5)
    want = 100 * 0.25 * np.sqrt(np.mean([0.5 / 1.5**2, 0.0, 0.5 / 2.5**2]))
    assert out["ergas"] == pytest.approx(want, rel=1e-12)
    assert out["mae"] == pytest.approx(2 / 6) and out["mse"] == pytest.approx(2 / 6)


def test_units_and_ratio_from_the_records(block_result):
    x = np.random.default_rng(0).uniform(1, 5, (3, 4, 4))
    y = x * 1.1
    one = block_result(SpectralBlock, {"a": spectral_record(x, y, units="8-bit", ratio=2.0),
                                       "b": spectral_record(x, y, units="8-bit", ratio=2.0)})
    plain = block_result(SpectralBlock, {"a": spectral_record(x, y), "b": spectral_record(x, y)})
    assert one["units"] == "8-bit" and plain["units"] == "data units"
    assert one["ergas"] == pytest.approx(2 * plain["ergas"])
    mixed = block_result(SpectralBlock, {"a": spectral_record(x, y, units="8-bit", ratio=2.0),
                                         "b": spectral_record(x, y, units="reflectance", ratio=1.0)})
    assert mixed["units"] == "mixed"
    assert mixed["ergas"] is None and "different ERGAS ratios" in mixed["ergas_reason"]


def test_sid_leaves_out_negative_spectra(block_result):
    t = np.array([[[1.0, 1.0]], [[1.0, 3.0]]])
    p = np.array([[[-1.0, 1.0]], [[1.0, 1.0]]])  # pixel 1 of the prediction is negative
    out = block_result(SpectralBlock, {"a": spectral_record(t, p)})
    pp, qq = np.array([0.25, 0.75]) + EPS, np.array([0.5, 0.5]) + EPS
    assert out["sid_pixels"] == 1 and out["sid"] == pytest.approx(np.sum((pp - qq) * np.log(pp / qq)))
    neg = block_result(SpectralBlock, {"a": spectral_record(t, -t)})
    assert neg["sid"] is None and "non-negative" in neg["sid_reason"]
