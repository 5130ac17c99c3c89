"""to_rgb_uint8: which bands become RGB and how other dtypes are scaled (against numpy references)."""

import numpy as np
from satcore_clip.preprocess import to_rgb_uint8

S2 = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12")


def test_uint8_rgb_is_passed_through_without_a_copy():
    a = np.random.default_rng(0).integers(0, 256, (3, 5, 7), dtype=np.uint8)
    out = to_rgb_uint8(a, ("red", "green", "blue"))
    assert np.array_equal(out, a) and np.shares_memory(out, a) and out.flags.c_contiguous
    four = np.random.default_rng(1).integers(0, 256, (4, 5, 7), dtype=np.uint8)
    first3 = to_rgb_uint8(four)  # unnamed bands: the first three
    assert np.array_equal(first3, four[:3]) and first3.flags.c_contiguous


def test_bands_picked_by_name_and_single_band_repeated():
    rng = np.random.default_rng(2)
    s2 = rng.integers(0, 256, (13, 4, 4), dtype=np.uint8)
    out = to_rgb_uint8(s2, S2)
    assert np.array_equal(out, s2[[3, 2, 1]]) and out.flags.c_contiguous
    bgr = rng.integers(0, 256, (3, 4, 4), dtype=np.uint8)
    assert np.array_equal(to_rgb_uint8(bgr, ("blue", "green", "red")), bgr[::-1])
    one = rng.integers(0, 256, (1, 4, 4), dtype=np.uint8)
    assert np.array_equal(to_rgb_uint8(one), np.repeat(one, 3, axis=0))


def test_other_dtypes_scaled_by_value_max_or_percentiles():
    rng = np.random.default_rng(3)
    x = rng.integers(0, 10000, (3, 8, 8)).astype(np.uint16)
    want = (np.clip(x / 10000.0, 0, 1) * 255 + 0.5).astype(np.uint8)
    assert np.array_equal(to_rgb_uint8(x, value_max=10000), want)
    lo, hi = np.percentile(x.astype(np.float64), [2, 98])
    ref = (np.clip((x - lo) / (hi - lo), 0, 1) * 255 + 0.5).astype(np.uint8)
    got = to_rgb_uint8(x)
    assert np.abs(got.astype(int) - ref.astype(int)).max() <= 1  # float32 vs float64 rounding
    assert got.min() == 0 and got.max() == 255
