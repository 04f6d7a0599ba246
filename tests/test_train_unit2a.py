"""train-unit2a on a tiny config and an espeak-ng corpus: learning, checkpoints, exact resume, DDP, safety."""

from __future__ import annotations

import copy
import dataclasses
import importlib.util
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from _unit2a_helpers import TINY_DISC_WIDTH, make_unit_corpus, write_config

from unit2av.cli import main
from unit2av.demo.corpus import espeak_available
from unit2av.errors import Unit2AVError
from unit2av.io.safe import load_torch
from unit2av.vocoder.checkpoint import load_vocoder
from unit2av.vocoder.config import load_config
from unit2av.vocoder.manifest import build_manifest, write_manifest
from unit2av.vocoder.state import Dist, TrainOptions, build_state, latest_checkpoint, load_checkpoint
from unit2av.vocoder.train import make_loaders, train, train_step

pytestmark = pytest.mark.skipif(not espeak_available(), reason="espeak-ng is not installed")
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models train fastest on one thread; two OpenMP threads stall badly on a busy 2-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """12 utterances of 4 voices (ko + en): the last sentence of each speaker is held out."""
    root = tmp_path_factory.mktemp("train_corpus")
    corpus = make_unit_corpus(root, sentences_per_voice=3)
    entries = build_manifest(corpus["audio_root"], corpus["unit_root"]).entries
    held = [e for e in entries if Path(e.audio).stem.endswith("_0003")]
    write_manifest([e for e in entries if e not in held], root / "train.jsonl")
    write_manifest(held, root / "valid.jsonl")
    return {"root": root, "config": write_config(root / "tiny.json"), "train": root / "train.jsonl",
            "valid": root / "valid.jsonl"}


def _cfg(data, **kw):
    kw = {"input_training_file": str(data["train"]), "input_validation_file": str(data["valid"]), **kw}
    return dataclasses.replace(load_config(data["config"]), **kw)


def _opts(folder, **kw) -> TrainOptions:
    base = dict(training_steps=6, checkpoint_interval=3, validation_interval=0, disc_width=TINY_DISC_WIDTH,
                num_workers=0, stdout_interval=100, summary_interval=1)
    return TrainOptions(str(folder), **{**base, **kw})


def _scalars(logdir: Path) -> tuple[dict[str, dict[int, float]], dict]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ea = EventAccumulator(str(logdir), size_guidance={"scalars": 0, "audio": 0, "images": 0})
    ea.Reload()
    tags = ea.Tags()
    return {t: {e.step: e.value for e in ea.Scalars(t)} for t in tags["scalars"]}, tags


def test_cli_training_lowers_validation_mel_error(data, tmp_path):
    ck = tmp_path / "ck"
    rc = main(["train-unit2a", "--config", str(data["config"]), "--checkpoint_path", str(ck),
               "--input_training_file", str(data["train"]), "--input_validation_file", str(data["valid"]),
               "--training_steps", "16", "--validation_interval", "8", "--checkpoint_interval", "8",
               "--summary_interval", "5", "--disc_width", str(TINY_DISC_WIDTH), "--device", "cpu",
               "--num_workers", "0"])
    assert rc == 0
    scalars, tags = _scalars(ck / "logs")
    val = scalars["validation/mel_spec_error"]
    assert sorted(val) == [0, 8, 16]
    assert val[16] < 0.8 * val[0], val  # measurably better than the untrained generator
    assert {"training/gen_loss_total", "training/mel_spec_error", "training/disc", "training/dur"} <= set(scalars)
    assert "generated/y_hat_0" in tags["audio"] and "gt/y_0" in tags["audio"]
    assert "generated/y_hat_spec_0" in tags["images"]
    for name in ("g_00000008", "do_00000008", "g_00000016", "do_00000016", "g_best", "do_best", "config.json"):
        assert (ck / name).is_file(), name
    g, do = load_torch(ck / "g_00000016"), load_torch(ck / "do_00000016")
    assert "conv_pre.weight_g" in g["generator"] and "ups.0.weight_v" in g["generator"]
    assert {"mpd", "msd", "optim_g", "optim_d", "steps", "epoch", "sched_g", "sched_d", "best_val_error",
            "config", "rng"} <= set(do)
    assert "discriminators.4.convs.0.weight_g" in do["mpd"]
    assert {"discriminators.0.convs.0.weight_orig", "discriminators.0.convs.0.weight_u",
            "discriminators.1.convs.0.weight_g"} <= set(do["msd"])
    assert do["steps"] == 16
    best = load_torch(ck / "do_best")
    assert best["best_val_error"] == pytest.approx(min(val[8], val[16]), rel=1e-5)
    model = load_vocoder(ck / "g_best", ck / "config.json")
    wav, _ = model(code=torch.randint(0, 16, (1, 20)), spkr=torch.randn(1, 1, 256))
    assert wav.shape == (1, 1, 20 * 320) and torch.isfinite(wav).all()


def test_resume_continues_exactly(data, tmp_path):
    cfg = _cfg(data, batch_size=2, input_validation_file=None)
    whole = train(cfg, _opts(tmp_path / "a"))  # 6 steps; 8 utterances / 2 = 4 per epoch
    assert whole.step == 6 and whole.epoch == 1
    first = train(cfg, _opts(tmp_path / "b", training_steps=3))
    assert first.step == 3 and sorted(p.name for p in (tmp_path / "b").glob("do_*")) == ["do_00000003"]
    # the optimiser state restored from do_00000003 is the saved one
    fresh = build_state(cfg, _opts(tmp_path / "b"), Dist())
    load_checkpoint(fresh, tmp_path / "b" / "do_00000003")
    saved = load_torch(tmp_path / "b" / "do_00000003")["optim_g"]["state"]
    for k, v in fresh.optim_g.state_dict()["state"].items():
        assert all(torch.equal(v[n], saved[k][n]) for n in ("exp_avg", "exp_avg_sq", "step"))
    resumed = train(cfg, _opts(tmp_path / "b"))  # the same command again, now to 6 steps
    assert resumed.step == 6
    a = load_torch(tmp_path / "a" / "g_00000006")["generator"]
    b = load_torch(tmp_path / "b" / "g_00000006")["generator"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    da, db = load_torch(tmp_path / "a" / "do_00000006"), load_torch(tmp_path / "b" / "do_00000006")
    assert all(torch.equal(da["mpd"][k], db["mpd"][k]) for k in da["mpd"])
    assert da["sched_g"] == db["sched_g"] and da["epoch"] == db["epoch"] == 1
    again = train(cfg, _opts(tmp_path / "b"))  # finished: rerunning does no work
    assert again.step == 6 and len(list((tmp_path / "b").glob("do_*"))) == 2


def test_kill_during_checkpoint_write_keeps_the_previous_one(data, tmp_path):
    cfg = _cfg(data, batch_size=2, input_validation_file=None)
    ck = tmp_path / "ck"
    train(cfg, _opts(ck, training_steps=3))
    good = load_torch(ck / "do_00000003")
    # a second run whose do_ write stops half-way; then it is killed with SIGKILL
    script = textwrap.dedent(f"""
        import io, sys, time, dataclasses, torch
        real_save = torch.save
        def half_save(obj, f):
            if isinstance(obj, dict) and "mpd" in obj:
                buf = io.BytesIO(); real_save(obj, buf)
                f.write(buf.getvalue()[: len(buf.getvalue()) // 2]); f.flush()
                print("HALF", flush=True); time.sleep(120)
            real_save(obj, f)
        torch.save = half_save
        from unit2av.vocoder.config import load_config
        from unit2av.vocoder.state import TrainOptions
        from unit2av.vocoder.train import train
        cfg = dataclasses.replace(load_config({str(data["config"])!r}), batch_size=2,
                                  input_training_file={str(data["train"])!r})
        train(cfg, TrainOptions({str(ck)!r}, training_steps=6, checkpoint_interval=100, validation_interval=0,
                                disc_width={TINY_DISC_WIDTH}, num_workers=0))
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        assert proc.stdout.readline().strip() == "HALF"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert not (ck / "do_00000006").exists()  # the half-written file never took the name
    assert any(p.name.startswith(".do_00000006") for p in ck.iterdir())  # it is a hidden temporary
    assert latest_checkpoint(ck) == ck / "do_00000003"
    state = train(cfg, _opts(ck))  # the rerun resumes from step 3
    assert state.step == 6 and torch.equal(load_torch(ck / "do_00000003")["optim_g"]["state"][0]["exp_avg"],
                                           good["optim_g"]["state"][0]["exp_avg"])


def test_non_finite_steps_are_skipped_then_stop(data, tmp_path):
    cfg = _cfg(data, batch_size=2)
    state = build_state(cfg, _opts(tmp_path, max_nonfinite=3), Dist())
    loader, _, _ = make_loaders(state, cfg.input_training_file, None)
    batch = next(iter(loader))
    bad = {**batch, "audio": batch["audio"].clone()}
    bad["audio"][0, 100] = float("nan")
    before = [p.detach().clone() for p in state.g.parameters()]
    assert train_step(state, bad) == {"skipped": 1.0}
    assert train_step(state, bad) == {"skipped": 1.0}
    assert state.step == 0 and state.nonfinite == 2
    assert all(torch.equal(a, b) for a, b in zip(before, state.g.parameters()))
    losses = train_step(state, batch)  # a good step resets the count
    assert state.step == 1 and state.nonfinite == 0 and all(map(lambda v: v == v, losses.values()))
    train_step(state, bad)
    train_step(state, bad)
    with pytest.raises(Unit2AVError, match="3 non-finite steps in a row") as err:
        train_step(state, bad)
    assert "\n" not in str(err.value)


def test_torchrun_two_cpu_processes(data, tmp_path):
    ck = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "unit2av.cli", "train-unit2a", "--config", str(data["config"]), "--checkpoint_path", str(ck),
           "--input_training_file", str(data["train"]), "--input_validation_file", str(data["valid"]),
           "--training_steps", "3", "--validation_interval", "3", "--checkpoint_interval", "3",
           "--batch_size", "2", "--disc_width", str(TINY_DISC_WIDTH), "--device", "cpu", "--num_workers", "0"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.count("trained 3 steps") == 1  # only rank 0 reports
    do = load_torch(ck / "do_00000003")
    # 8 utterances, 2 processes x batch 2: one epoch is 2 steps, so step 3 is in epoch 1
    assert do["steps"] == 3 and do["epoch"] == 1 and do["epoch_batches"] == 1
    assert (ck / "g_best").is_file()


def test_missing_training_manifest_is_exit_2(data, tmp_path, capsys):
    rc = main(["train-unit2a", "--config", str(data["config"]), "--checkpoint_path", str(tmp_path / "x"),
               "--input_training_file", str(tmp_path / "none.jsonl"), "--device", "cpu"])
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert "none.jsonl" in err and "manifest not found" in err and len(err.splitlines()) == 1


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
    out = generator_objective({"mel": mel, "fm": fm, "adv": adv, "dur": torch.tensor(0.1)},
                              {"mel": 45.0, "fm": 2.0, "adv": 1.0, "dur": 1.0})
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


def test_lambda_stft_trains_and_init_starts_from_given_weights(data, tmp_path):
    cfg = _cfg(data, batch_size=2, input_validation_file=None)
    train(cfg, _opts(tmp_path / "a", training_steps=3))
    start = tmp_path / "a" / "g_00000003"
    stft_cfg = dataclasses.replace(cfg, lambda_stft=5.0, lambda_pitch=3.0)
    opts = _opts(tmp_path / "b", training_steps=2, init=str(start))
    fresh = build_state(stft_cfg, opts, Dist())
    want = load_vocoder(start, data["config"]).state_dict()
    assert all(torch.equal(v, want[k]) for k, v in fresh.g.state_dict().items())
    loader, _, _ = make_loaders(fresh, cfg.input_training_file, None)
    assert fresh.weights == {"mel": 45.0, "fm": 2.0, "adv": 1.0, "dur": 1.0, "stft": 5.0, "pitch": 3.0, "f0": 1.0}
    losses = train_step(fresh, next(iter(loader)))
    assert losses["stft"] > 0 and losses["pitch"] > 0
    assert losses["total"] == pytest.approx(45 * losses["mel"] + 2 * losses["fm"] + losses["adv"] + losses["dur"]
                                            + 5.0 * losses["stft"] + 3.0 * losses["pitch"], rel=1e-4)
    train(stft_cfg, opts)  # a fresh run from the given weights...
    again = train(stft_cfg, _opts(tmp_path / "b", training_steps=4, init=str(start)))  # ...then a resume:
    resumed = load_torch(tmp_path / "b" / "g_00000004")["generator"]  # it continues, not restarts
    assert again.step == 4 and not all(torch.equal(v, load_torch(start)["generator"][k]) for k, v in resumed.items())


def test_f0_source_vocoder_trains_from_a_plain_checkpoint(data, tmp_path):
    cfg = _cfg(data, batch_size=2, input_validation_file=None)
    train(cfg, _opts(tmp_path / "a", training_steps=2))
    src_cfg = dataclasses.replace(cfg, f0_source=True, lambda_f0=2.0)
    opts = _opts(tmp_path / "b", training_steps=3, init=str(tmp_path / "a" / "g_00000002"))
    state = build_state(src_cfg, opts, Dist())  # the plain checkpoint lacks the source parts: they start fresh
    loader, _, _ = make_loaders(state, cfg.input_training_file, None)
    losses = train_step(state, next(iter(loader)))
    assert losses["f0"] > 0
    assert losses["total"] == pytest.approx(45 * losses["mel"] + 2 * losses["fm"] + losses["adv"] + losses["dur"]
                                            + 2.0 * losses["f0"], rel=1e-4)
    final = train(src_cfg, opts)
    assert final.step == 3
    model = load_vocoder(tmp_path / "b" / "g_00000003")  # its embedded config says f0_source
    assert model.f0_source and any(k.startswith("f0_predictor.") for k in model.state_dict())
    with torch.no_grad():
        wav, _ = model(code=torch.randint(0, 16, (1, 20)), spkr=torch.randn(1, 1, 256))
    assert wav.shape == (1, 1, 6400) and bool(torch.isfinite(wav).all())


def test_bad_init_file_is_exit_2(data, tmp_path, capsys):
    bad = tmp_path / "g_bad"
    bad.write_bytes(b"not a checkpoint")
    rc = main(["train-unit2a", "--config", str(data["config"]), "--checkpoint_path", str(tmp_path / "x"),
               "--input_training_file", str(data["train"]), "--init", str(bad), "--device", "cpu"])
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert "g_bad" in err and len(err.splitlines()) == 1


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
        y_hat, dur = ref(code=batch["code"], spkr=batch["spkr"],
                         f0=frame_f0(batch["audio"], cfg.sampling_rate, cfg.code_hop_size))
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
    assert not all(torch.equal(a, b) for a, b in zip(state.g.state_dict().values(), copy.deepcopy(
        UnitVocoder.from_config(cfg)).state_dict().values()))  # it did train
    now = [state.mpd.state_dict(), state.msd.state_dict()]
    assert all(torch.equal(v, before[k]) for before, after in zip(discs, now) for k, v in after.items())
    # g_best is chosen by the old loop's validation objective: mel + pitch x 30/45, whole utterances, predicted f0
    valid = UnitAudioDataset(read_manifest(data["valid"]), cfg, segment=False)
    state.g.eval()
    with torch.no_grad():
        want = []
        for item in valid:
            y_hat, _ = state.g(code=item["code"][None], spkr=item["spkr"][None])
            want.append(float(mel_loss(item["mel"][None], mel(y_hat[:, 0]))
                              + pitch_loss(item["audio"][None], y_hat) * (30.0 / 45.0)))
    state.g.train()
    got, _ = validate(state, torch.utils.data.DataLoader(valid, batch_size=1))
    assert got == pytest.approx(sum(want) / len(want), rel=1e-6)


def test_default_vocoder_script_stage_trains_and_keeps_the_best(data, tmp_path):
    script = _script("train_default_vocoder")
    info = script.train_generator(_cfg(data), tmp_path / "nsf", minutes=10.0, seed=0, batch_size=2,
                                  validation_interval=2, lambda_pitch=30.0, f0_source=True, steps=4)
    assert info["steps"] == 4 and info["best_val_objective"] < info["first_val_objective"]
    model = load_vocoder(tmp_path / "nsf" / "g_best")  # a product checkpoint with its recipe config inside
    assert model.f0_source and load_config(tmp_path / "nsf" / "config.json").lambda_adv == 0.0
    scalars, _ = _scalars(tmp_path / "nsf" / "logs")
    assert sorted(scalars["validation/objective"]) == [0, 2, 4]
