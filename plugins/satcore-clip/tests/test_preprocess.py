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


def _reference(x, cfg, float_resize):
    """The textbook steps, one at a time: resize, crop, clamp, /255, -mean, /std."""
    import torch
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms.v2 import functional as F

    y = x.to(torch.float32) if float_resize else x
    y = F.resize(y, [cfg["size"]], interpolation=InterpolationMode.BICUBIC, antialias=True)
    y = F.center_crop(y, [cfg["size"], cfg["size"]]).to(torch.float32).clamp(0, 255) / 255.0
    m = torch.tensor(cfg["mean"]).view(1, 3, 1, 1)
    s = torch.tensor(cfg["std"]).view(1, 3, 1, 1)
    return (y - m) / s


def test_fused_normalisation_equals_the_step_by_step_reference():
    """Both resize paths (uint8 on the CPU, float32 as on a GPU) against the unfused formula."""
    import torch
    from satcore_clip.preprocess import preprocess_uint8

    cfg = {
        "size": 56,
        "mean": [0.48145466, 0.4578275, 0.40821073],
        "std": [0.26862954, 0.26130258, 0.27577711],
    }
    x = torch.from_numpy(np.random.default_rng(4).integers(0, 256, (3, 3, 80, 72), dtype=np.uint8))
    for float_resize in (False, True):
        got = preprocess_uint8(x, cfg, float_resize=float_resize)
        want = _reference(x, cfg, float_resize)
        assert got.dtype == torch.float32 and got.shape == (3, 3, 56, 56)
        assert torch.allclose(got, want, atol=2e-6, rtol=0), float((got - want).abs().max())
    # the float resize overshoots [0, 255] on this noise, so the clamp is exercised by the comparison
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms.v2 import functional as F

    raw = F.resize(x.to(torch.float32), [56], interpolation=InterpolationMode.BICUBIC, antialias=True)
    assert float(raw.max()) > 255 and float(raw.min()) < 0
