"""The CycleGAN's networks and losses against hand formulas."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from satcore_generative.cyclegan import (
    LAMBDA_CYCLE,
    CycleGanConfig,
    PatchDiscriminator,
    SqueezeExcitation,
    build_models,
    discriminator_loss,
    generator_loss,
    lsgan_loss,
    spectral_angle,
    spectral_angle_loss,
)


def test_spectral_angle_matches_the_formula():
    rng = np.random.default_rng(0)
    x, y = rng.random((2, 13, 5, 5)), rng.random((2, 13, 5, 5))
    cos = (x * y).sum(1) / (np.linalg.norm(x, axis=1) * np.linalg.norm(y, axis=1))
    want = np.arccos(cos)
    got = spectral_angle(torch.from_numpy(x), torch.from_numpy(y)).numpy()
    np.testing.assert_allclose(got, want, atol=1e-6)
    # hand examples: orthogonal → 90°, parallel (scaled) → 0°, 45°
    e = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    assert float(torch.rad2deg(spectral_angle(e, torch.tensor([[0.0, 2.0]], dtype=torch.float64)))) == \
        pytest.approx(90.0, abs=1e-4)
    assert float(torch.rad2deg(spectral_angle(e, 3 * e))) == pytest.approx(0.0, abs=0.1)
    assert float(torch.rad2deg(spectral_angle(e, torch.tensor([[1.0, 1.0]], dtype=torch.float64)))) == \
        pytest.approx(45.0, abs=1e-4)


def test_spectral_angle_loss_gradients_are_correct():
    torch.manual_seed(0)
    x = torch.rand(2, 13, 3, 3, dtype=torch.float64, requires_grad=True)
    y = torch.rand(2, 13, 3, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(spectral_angle_loss, (x, y), eps=1e-6, atol=1e-5)


def test_spectral_angle_loss_is_finite_for_zero_vectors():
    x = torch.zeros(1, 13, 2, 2, dtype=torch.float64, requires_grad=True)
    y = torch.rand(1, 13, 2, 2, dtype=torch.float64, requires_grad=True)
    for a, b in ((x, y), (y, x), (x, x)):
        loss = spectral_angle_loss(a, b)
        (gx, gy) = torch.autograd.grad(loss, (x, y), allow_unused=True)
        assert torch.isfinite(loss)
        assert all(g is None or torch.isfinite(g).all() for g in (gx, gy))
    # identical vectors: finite gradient too (arccos's derivative is infinite at cos = 1 unless clamped)
    z = torch.rand(1, 13, 2, 2, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(spectral_angle_loss(z, z.detach().clone()), (z,))
    assert torch.isfinite(g).all()


def test_generator_and_discriminator_shapes():
    cfg = CycleGanConfig(base=4, n_res=2, se_reduction=2, disc_base=4)
    m = build_models(cfg)
    rgb, ms = torch.rand(2, 3, 64, 64) * 2 - 1, torch.rand(2, 13, 64, 64) * 2 - 1
    assert m["G"](rgb).shape == (2, 13, 64, 64)
    assert m["F"](ms).shape == (2, 3, 64, 64)
    assert m["G"](rgb).abs().max() <= 1.0  # tanh
    # PatchGAN on 64×64: three stride-2 convs (64 → 8) then two stride-1 4×4 convs (8 → 7 → 6)
    assert m["D_ms"](ms).shape == (2, 1, 6, 6)
    assert m["D_rgb"](rgb).shape == (2, 1, 6, 6)
    d = PatchDiscriminator(13, 4)
    convs = [x for x in d.modules() if isinstance(x, torch.nn.Conv2d)]
    assert len(convs) == 5  # four feature convolutions and the 1-channel patch output
    assert sum(isinstance(x, torch.nn.LeakyReLU) for x in d.modules()) == 4
    assert sum(isinstance(x, torch.nn.InstanceNorm2d) for x in d.modules()) == 3
    assert sum(isinstance(x, SqueezeExcitation) for x in m["G"].modules()) == 2


def test_squeeze_excitation_gates_channels_in_0_1():
    se = SqueezeExcitation(8, 2)
    x = torch.rand(1, 8, 5, 5) + 0.1
    ratio = se(x) / x
    per_channel = ratio.flatten(2)
    assert torch.allclose(per_channel, per_channel[..., :1].expand_as(per_channel), atol=1e-6)
    assert ((ratio > 0) & (ratio < 1)).all()


def test_least_squares_losses():
    p = torch.tensor([0.0, 0.5, 1.0])
    assert float(lsgan_loss(p, True)) == pytest.approx((1 + 0.25 + 0) / 3)
    assert float(lsgan_loss(p, False)) == pytest.approx((0 + 0.25 + 1) / 3)


def test_generator_loss_is_gan_plus_ten_times_the_cycle_angles():
    torch.manual_seed(1)
    cfg = CycleGanConfig(base=4, n_res=1, se_reduction=2, disc_base=4)
    m = build_models(cfg)
    for net in m.values():
        net.eval()
    rgb, ms = torch.rand(1, 3, 32, 32) * 2 - 1, torch.rand(1, 13, 32, 32) * 2 - 1
    loss, parts, fakes = generator_loss(m, rgb, ms)
    cyc = np.radians(parts["cycle_rgb_deg"]) + np.radians(parts["cycle_ms_deg"])
    assert LAMBDA_CYCLE == 10.0
    assert float(loss.detach()) == pytest.approx(parts["gan_g"] + parts["gan_f"] + 10.0 * cyc, rel=1e-5)
    with torch.no_grad():
        d = discriminator_loss(m["D_ms"], ms, fakes["fake_ms"])
        want = 0.5 * (((m["D_ms"](ms) - 1) ** 2).mean() + (m["D_ms"](fakes["fake_ms"]) ** 2).mean())
    assert float(d) == pytest.approx(float(want), rel=1e-6)
