"""train-unit2a on a tiny config and an espeak-ng corpus: learning, checkpoints, exact resume, DDP, safety."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import textwrap

import pytest
import torch
from _train_helpers import tb_scalars as _scalars
from _train_helpers import train_cfg as _cfg
from _train_helpers import train_opts as _opts
from _train_helpers import unit2a_data  # noqa: F401 - fixture "data"
from _unit2a_helpers import TINY_DISC_WIDTH

from unit2av.cli import main
from unit2av.demo.corpus import espeak_available
from unit2av.errors import Unit2AVError
from unit2av.io.safe import load_torch
from unit2av.vocoder.checkpoint import load_vocoder
from unit2av.vocoder.state import Dist, build_state, latest_checkpoint, load_checkpoint
from unit2av.vocoder.step import train_step
from unit2av.vocoder.train import make_loaders, train

pytestmark = pytest.mark.skipif(not espeak_available(), reason="espeak-ng is not installed")


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models train fastest on one thread; two OpenMP threads stall badly on a busy 2-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_cli_training_lowers_validation_mel_error(data, tmp_path):
    ck = tmp_path / "ck"
    rc = main(
        [
            "train-unit2a",
            "--config",
            str(data["config"]),
            "--checkpoint_path",
            str(ck),
            "--input_training_file",
            str(data["train"]),
            "--input_validation_file",
            str(data["valid"]),
            "--training_steps",
            "16",
            "--validation_interval",
            "8",
            "--checkpoint_interval",
            "8",
            "--summary_interval",
            "5",
            "--disc_width",
            str(TINY_DISC_WIDTH),
            "--device",
            "cpu",
            "--num_workers",
            "0",
        ]
    )
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
    assert {
        "mpd",
        "msd",
        "optim_g",
        "optim_d",
        "steps",
        "epoch",
        "sched_g",
        "sched_d",
        "best_val_error",
        "config",
        "rng",
    } <= set(do)
    assert "discriminators.4.convs.0.weight_g" in do["mpd"]
    assert {
        "discriminators.0.convs.0.weight_orig",
        "discriminators.0.convs.0.weight_u",
        "discriminators.1.convs.0.weight_g",
    } <= set(do["msd"])
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
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    try:
        assert proc.stdout.readline().strip() == "HALF"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert not (ck / "do_00000006").exists()  # the half-written file never took the name
    assert any(p.name.startswith(".do_00000006") for p in ck.iterdir())  # it is a hidden temporary
    assert latest_checkpoint(ck) == ck / "do_00000003"
    state = train(cfg, _opts(ck))  # the rerun resumes from step 3
    assert state.step == 6 and torch.equal(
        load_torch(ck / "do_00000003")["optim_g"]["state"][0]["exp_avg"], good["optim_g"]["state"][0]["exp_avg"]
    )


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
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "unit2av.cli",
        "train-unit2a",
        "--config",
        str(data["config"]),
        "--checkpoint_path",
        str(ck),
        "--input_training_file",
        str(data["train"]),
        "--input_validation_file",
        str(data["valid"]),
        "--training_steps",
        "3",
        "--validation_interval",
        "3",
        "--checkpoint_interval",
        "3",
        "--batch_size",
        "2",
        "--disc_width",
        str(TINY_DISC_WIDTH),
        "--device",
        "cpu",
        "--num_workers",
        "0",
    ]
    res = subprocess.run(
        cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.count("trained 3 steps") == 1  # only rank 0 reports
    do = load_torch(ck / "do_00000003")
    # 8 utterances, 2 processes x batch 2: one epoch is 2 steps, so step 3 is in epoch 1
    assert do["steps"] == 3 and do["epoch"] == 1 and do["epoch_batches"] == 1
    assert (ck / "g_best").is_file()


def test_missing_training_manifest_is_exit_2(data, tmp_path, capsys):
    rc = main(
        [
            "train-unit2a",
            "--config",
            str(data["config"]),
            "--checkpoint_path",
            str(tmp_path / "x"),
            "--input_training_file",
            str(tmp_path / "none.jsonl"),
            "--device",
            "cpu",
        ]
    )
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert "none.jsonl" in err and "manifest not found" in err and len(err.splitlines()) == 1


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
    assert losses["total"] == pytest.approx(
        45 * losses["mel"]
        + 2 * losses["fm"]
        + losses["adv"]
        + losses["dur"]
        + 5.0 * losses["stft"]
        + 3.0 * losses["pitch"],
        rel=1e-4,
    )
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
    assert losses["total"] == pytest.approx(
        45 * losses["mel"] + 2 * losses["fm"] + losses["adv"] + losses["dur"] + 2.0 * losses["f0"], rel=1e-4
    )
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
    rc = main(
        [
            "train-unit2a",
            "--config",
            str(data["config"]),
            "--checkpoint_path",
            str(tmp_path / "x"),
            "--input_training_file",
            str(data["train"]),
            "--init",
            str(bad),
            "--device",
            "cpu",
        ]
    )
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert "g_bad" in err and len(err.splitlines()) == 1


def test_data_workers_policy(monkeypatch):
    """An explicit count wins; the config's count stands on a GPU and is capped by the free cores on the CPU."""
    from unit2av.training import data_workers

    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 6)
    cpu, gpu = torch.device("cpu"), torch.device("cuda", 0)
    assert data_workers(4, None, gpu) == 4
    assert data_workers(4, None, cpu) == 2  # 8 cores, 6 used by torch
    assert data_workers(1, None, cpu) == 1
    assert data_workers(4, 3, cpu) == 3 and data_workers(4, 0, gpu) == 0  # --num-workers as given
    monkeypatch.setattr(torch, "get_num_threads", lambda: 8)
    assert data_workers(4, None, cpu) == 0  # every core has a torch thread: load in the training process
