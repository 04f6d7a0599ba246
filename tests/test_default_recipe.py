"""The bundled vocoder's recipe (scripts/train_default_vocoder.py) is train-unit2a with a config."""

from __future__ import annotations

import copy
import importlib.util
from pathlib import Path

import pytest
import torch
from _train_helpers import tb_scalars as _scalars
from _train_helpers import train_cfg as _cfg
from _train_helpers import unit2a_data  # noqa: F401 - fixture "data"

from unit2av.demo.corpus import espeak_available
from unit2av.vocoder.checkpoint import load_vocoder
from unit2av.vocoder.config import load_config
from unit2av.vocoder.state import Dist, build_state
from unit2av.vocoder.step import train_step
from unit2av.vocoder.train import make_loaders

pytestmark = pytest.mark.skipif(not espeak_available(), reason="espeak-ng is not installed")
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models train fastest on one thread."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bundled_vocoder_recipe_runs_the_train_unit2a_step(data, tmp_path):
    """scripts/train_default_vocoder.py trains through train-unit2a. Its recipe config gives the update the
    bundled vocoder was trained with: that script's own loop before it called train-unit2a (see git history),
    written out here: AdamW on (mel + pitch x 30/45) x 45 + duration + f0 predictor, no discriminators."""
    from unit2av.spectral import frame_f0, mel_for_config
    from unit2av.vocoder.data import UnitAudioDataset
    from unit2av.vocoder.losses import mel_loss, pitch_loss
    from unit2av.vocoder.manifest import read_manifest
    from unit2av.vocoder.model import UnitVocoder
    from unit2av.vocoder.train import validate

    script = _script("train_default_vocoder")
    cfg = script.recipe_config(_cfg(data), seed=5, batch_size=2, lambda_pitch=30.0, f0_source=True)
    state = build_state(cfg, script.recipe_options(tmp_path, 1.0, 10, lambda_pitch=30.0), Dist())
    torch.manual_seed(cfg.seed)  # the old loop's initialisation
    ref = UnitVocoder.from_config(cfg).train()
    assert all(torch.equal(a, b) for a, b in zip(state.g.state_dict().values(), ref.state_dict().values()))
    optim = torch.optim.AdamW(ref.parameters(), cfg.learning_rate, betas=(cfg.adam_b1, cfg.adam_b2))
    mel, discs = mel_for_config(cfg, for_loss=True), copy.deepcopy([state.mpd.state_dict(), state.msd.state_dict()])
    batches = iter(make_loaders(state, cfg.input_training_file, None)[0])
    for step in range(2):
        batch = next(batches)
        torch.manual_seed(100 + step)  # the same dropout in the duration predictor
        y_hat, dur = ref(
            code=batch["code"], spkr=batch["spkr"], f0=frame_f0(batch["audio"], cfg.sampling_rate, cfg.code_hop_size)
        )
        objective = mel_loss(batch["mel"], mel(y_hat[:, 0])) + pitch_loss(batch["audio"], y_hat) * (30.0 / 45.0)
        loss = objective * 45.0 + dur * 1.0 + ref.last_f0_loss * cfg.lambda_f0
        optim.zero_grad()
        loss.backward()
        optim.step()
        torch.manual_seed(100 + step)
        losses = train_step(state, batch)
        assert losses["total"] == pytest.approx(float(loss.detach()), rel=1e-5) and "disc" not in losses
    for a, b in zip(state.g.parameters(), ref.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    assert not all(
        torch.equal(a, b)
        for a, b in zip(
            state.g.state_dict().values(), copy.deepcopy(UnitVocoder.from_config(cfg)).state_dict().values()
        )
    )  # it did train
    now = [state.mpd.state_dict(), state.msd.state_dict()]
    assert all(torch.equal(v, before[k]) for before, after in zip(discs, now) for k, v in after.items())
    # g_best is chosen by the old loop's validation objective: mel + pitch x 30/45, whole utterances, predicted f0
    valid = UnitAudioDataset(read_manifest(data["valid"]), cfg, segment=False)
    state.g.eval()
    with torch.no_grad():
        want = []
        for item in valid:
            y_hat, _ = state.g(code=item["code"][None], spkr=item["spkr"][None])
            want.append(
                float(
                    mel_loss(item["mel"][None], mel(y_hat[:, 0]))
                    + pitch_loss(item["audio"][None], y_hat) * (30.0 / 45.0)
                )
            )
    state.g.train()
    got, _ = validate(state, torch.utils.data.DataLoader(valid, batch_size=1))
    assert got == pytest.approx(sum(want) / len(want), rel=1e-6)


def test_default_vocoder_script_stage_trains_and_keeps_the_best(data, tmp_path):
    script = _script("train_default_vocoder")
    info = script.train_generator(
        _cfg(data),
        tmp_path / "nsf",
        minutes=10.0,
        seed=0,
        batch_size=2,
        validation_interval=2,
        lambda_pitch=30.0,
        f0_source=True,
        steps=4,
    )
    assert info["steps"] == 4 and info["best_val_objective"] < info["first_val_objective"]
    model = load_vocoder(tmp_path / "nsf" / "g_best")  # a product checkpoint with its recipe config inside
    assert model.f0_source and load_config(tmp_path / "nsf" / "config.json").lambda_adv == 0.0
    scalars, _ = _scalars(tmp_path / "nsf" / "logs")
    assert sorted(scalars["validation/objective"]) == [0, 2, 4]
