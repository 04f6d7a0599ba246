"""The vocoder's training losses on hand-computed values and on signals with a known pitch."""

from __future__ import annotations

import pytest
import torch


def test_losses_on_hand_computed_values():
    from unit2av.vocoder.losses import discriminator_loss, feature_loss, generator_loss, generator_objective, mel_loss

    real, fake = [torch.ones(2, 3), torch.full((2, 5), 0.5)], [torch.zeros(2, 3), torch.full((2, 5), 0.5)]
    total, r, g = discriminator_loss(real, fake)
    assert r == [0.0, 0.25] and g == [0.0, 0.25] and float(total) == pytest.approx(0.5)
    adv, each = generator_loss(fake)
    assert float(adv) == pytest.approx(1.0 + 0.25) and len(each) == 2
    fm = feature_loss([[torch.zeros(4), torch.ones(2)]], [[torch.full((4,), 0.5), torch.ones(2)]])
    assert float(fm) == pytest.approx(0.5)
    mel = mel_loss(torch.zeros(1, 80, 10), torch.full((1, 80, 12), 2.0))  # frames trimmed to 10
    assert float(mel) == pytest.approx(2.0)
    out = generator_objective(
        {"mel": mel, "fm": fm, "adv": adv, "dur": torch.tensor(0.1)}, {"mel": 45.0, "fm": 2.0, "adv": 1.0, "dur": 1.0}
    )
    assert float(out["total"]) == pytest.approx(45 * 2.0 + 2 * 0.5 + 1.25 + 0.1)
    assert float(out["mel"]) == 2.0 and float(out["fm"]) == 0.5  # the terms come back unweighted
    no_adv = generator_objective({"mel": mel, "fm": fm, "adv": adv, "dur": None}, {"mel": 45.0, "fm": 2.0})
    assert float(no_adv["total"]) == pytest.approx(45 * 2.0 + 2 * 0.5) and float(no_adv["dur"]) == 0.0


def test_discriminators_have_hifigan_layout():
    from unit2av.vocoder.discriminators import MultiPeriodDiscriminator, MultiScaleDiscriminator, legacy_state_dict

    mpd, msd = MultiPeriodDiscriminator(), MultiScaleDiscriminator()
    n = sum(p.numel() for p in mpd.parameters()) + sum(p.numel() for p in msd.parameters())
    assert n == pytest.approx(70.7e6, rel=1e-3)  # HiFi-GAN V1's discriminators: 70.7 M parameters
    p, s = legacy_state_dict(mpd), legacy_state_dict(msd)
    assert p["discriminators.0.convs.0.weight_v"].shape == (32, 1, 5, 1)
    assert p["discriminators.4.conv_post.weight_g"].shape == (1, 1, 1, 1)
    assert s["discriminators.0.convs.1.weight_orig"].shape == (128, 32, 41)  # groups 4
    assert s["discriminators.0.convs.1.weight_u"].shape == (128,)
    assert s["discriminators.2.convs.6.weight_v"].shape == (1024, 1024, 5)
    assert not any("parametrizations" in k for k in [*p, *s])
    again = MultiScaleDiscriminator()
    again.load_state_dict(s)  # the released names load back
    y = torch.randn(1, 1, 4000)
    assert torch.equal(again(y, y)[0][1], msd(y, y)[0][1])


def _pulses(f0: float, seconds: float = 0.6, shift: int = 0, sr: int = 16000) -> torch.Tensor:
    """A band-limited-ish glottal pulse train at ``f0`` Hz (decaying pulses), (1, T)."""
    t = torch.arange(int(seconds * sr) + shift, dtype=torch.float64)
    period = sr / f0
    phase = torch.remainder(t, period)
    return (torch.exp(-phase / 24.0) * torch.cos(2 * torch.pi * 700 * phase / sr))[shift:].float()[None]


def test_stft_loss_hears_a_pitch_change_not_a_time_shift():
    from unit2av.vocoder.losses import generator_objective, stft_loss

    y = _pulses(100.0)
    same_late = _pulses(100.0, shift=37)  # the same voice, 37 samples later: same magnitudes
    other = _pulses(110.0)  # the same pulse shape at a 10 % higher pitch
    assert float(stft_loss(y, y)) < 1e-6
    near, far = float(stft_loss(y, same_late)), float(stft_loss(y, other))
    assert far > 4 * near, (near, far)
    terms = {"mel": torch.tensor(1.0), "fm": torch.tensor(0.0), "adv": torch.tensor(0.0), "dur": None}
    weights = {"mel": 45.0, "fm": 2.0, "adv": 1.0, "dur": 0.0, "stft": 10.0}
    assert float(generator_objective(terms, weights)["total"]) == pytest.approx(45.0)
    weighted = generator_objective({**terms, "stft": torch.tensor(0.5)}, weights)
    assert float(weighted["total"]) == pytest.approx(50.0) and float(weighted["stft"]) == 0.5


def test_pitch_loss_wants_the_right_pitch_not_the_right_phase():
    from unit2av.vocoder.losses import pitch_loss

    y = _pulses(135.0)  # a low female voice's pitch
    late = _pulses(135.0, shift=50)
    grid = _pulses(250.0)  # the period a generator's upsampling grid falls into (64 samples)
    noise = torch.randn(y.shape, generator=torch.Generator().manual_seed(0)) * y.std()
    assert float(pitch_loss(y, y)) < 1e-6
    same = float(pitch_loss(y, late))
    assert same < 0.05, same
    assert float(pitch_loss(y, grid)) > 5 * same and float(pitch_loss(y, noise)) > 5 * same
    # only frames with real sound count: a silent first half may hold anything
    quiet = y.clone()
    quiet[:, :4800] = 0
    mess = quiet.clone()
    mess[:, :4000] = noise[:, :4000] * 1e-3
    assert float(pitch_loss(quiet, mess)) < 0.05
    # the gradient pulls a slightly detuned signal towards the real pitch
    fake = _pulses(150.0).requires_grad_(True)
    pitch_loss(y, fake).backward()
    assert fake.grad is not None and float(fake.grad.abs().sum()) > 0
