"""train-face / train-sync on a generated talking-face dataset (espeak-ng speech, drawn face)."""

from __future__ import annotations

import argparse
import json
import pickle

import numpy as np
import pytest
import torch
from _face_helpers import face_dataset  # noqa: F401 - fixture

from unit2av.demo.talking_face import mouth_track
from unit2av.errors import Unit2AVError
from unit2av.face.data import FaceWindows, build_face_manifest, read_face_manifest
from unit2av.face.state import FaceTrainConfig, FaceTrainOptions, load_face_config
from unit2av.face.train import train_face
from unit2av.face.train_sync import SyncConfig, train_sync
from unit2av.io.safe import load_plain_pickle, load_torch


def _cfg(ds, **kw) -> FaceTrainConfig:
    base = dict(
        width=32,
        num_embeddings=ds["k"],
        batch_size=2,
        learning_rate=1e-3,
        seed=3,
        input_training_file=str(ds["train"]),
        input_validation_file=str(ds["valid"]),
    )
    return FaceTrainConfig(**{**base, **kw})


def test_generated_clips_follow_the_speech(face_dataset):  # noqa: F811
    """Silence -> closed mouth, speech -> open; one box per frame; units at 50 Hz for 25 fps frames."""
    import soundfile as sf

    wav, sr = sf.read(face_dataset["records"][0]["path"], dtype="float32")
    opening, roundness = mouth_track(wav, sr)
    assert len(opening) == int(np.ceil(len(wav) / 640))
    loud = np.array([np.sqrt(np.mean(wav[i * 640 : (i + 1) * 640] ** 2)) for i in range(len(opening))])
    quiet = np.convolve(loud, np.ones(3), "same") < 1e-3  # silent, with silent neighbours (smoothing)
    assert quiet.any() and opening[quiet].max() < 0.05 and opening.max() > 0.6
    assert np.all((roundness >= 0) & (roundness <= 1))
    clip = face_dataset["train_clips"][0]
    boxes = load_plain_pickle(clip["bbox"])
    assert len(boxes) == clip["num_frames"] and boxes[0].dtype == np.float32
    code = load_torch(clip["units"])["code"]
    assert abs(code.numel() - 2 * clip["num_frames"]) <= 2


def test_windows_take_the_reference_from_another_window(face_dataset):  # noqa: F811
    ds = FaceWindows(read_face_manifest(face_dataset["train"]), seed=0)
    item = ds[5]
    assert item["units"].shape == (20,) and item["faces"].shape == (10, 6, 96, 96)
    assert item["target"].shape == (10, 3, 96, 96)
    assert torch.all(item["faces"][:, :3, 48:] == 0)  # mouth hidden
    assert torch.equal(item["faces"][:, :3, :48], item["target"][:, :, :48])
    assert not torch.equal(item["faces"][:, 3:], item["target"])  # reference is not the target window
    streamed = FaceWindows(read_face_manifest(face_dataset["train"]), seed=0, cache_clips=1)  # decode on demand
    for key in (5, 6, 5):
        assert torch.equal(streamed[key]["faces"], ds[key]["faces"])  # items depend on the key only
    assert len(streamed._cache) == 1


def test_train_face_lowers_validation_l1(face_dataset, tmp_path):  # noqa: F811
    opts = FaceTrainOptions(
        checkpoint_path=str(tmp_path / "ck"),
        training_steps=10,
        validation_interval=5,
        checkpoint_interval=0,
        device="cpu",
        image_windows=1,
        valid_windows=2,
    )
    state = train_face(_cfg(face_dataset), opts)
    assert state.step == 10
    assert state.best_val_error < state.first_val_error
    best = load_torch(tmp_path / "ck" / "f_best")
    assert set(best) >= {"audio", "video", "face_config", "steps"} and best["audio"] == {}
    assert best["video"]["unit_embed.weight"].shape == (face_dataset["k"], 32)
    assert any((tmp_path / "ck" / "logs").iterdir())  # TensorBoard events


def test_resume_continues_exactly(face_dataset, tmp_path):  # noqa: F811
    """4 steps in one go == 2 steps, stop, rerun to 4 (with the quality discriminator on)."""
    cfg = _cfg(face_dataset, width=16, batch_size=1, adv_weight=0.1, disc_channels=8)

    def run(folder, steps):
        return train_face(
            cfg,
            FaceTrainOptions(
                checkpoint_path=str(folder),
                training_steps=steps,
                validation_interval=0,
                checkpoint_interval=0,
                device="cpu",
            ),
        )

    run(tmp_path / "a", 4)
    run(tmp_path / "b", 2)
    assert run(tmp_path / "b", 4).step == 4
    a, b = load_torch(tmp_path / "a" / "f_00000004")["video"], load_torch(tmp_path / "b" / "f_00000004")["video"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    da, db = load_torch(tmp_path / "a" / "fo_00000004")["disc"], load_torch(tmp_path / "b" / "fo_00000004")["disc"]
    assert all(torch.equal(da[k], db[k]) for k in da)


def test_train_sync_separates_in_sync_from_shifted(face_dataset, tmp_path):  # noqa: F811
    cfg = SyncConfig(
        checkpoint_path=str(tmp_path / "sync"),
        input_training_file=str(face_dataset["train"]),
        input_validation_file=str(face_dataset["valid"]),
        num_embeddings=face_dataset["k"],
        dim=32,
        channels=8,
        batch_size=8,
        learning_rate=2e-3,
        training_steps=300,  # 100 steps judged on 8 windows sat at chance when the clips' encoding changed
        validation_interval=100,
        valid_windows=32,
        device="cpu",
    )
    r = train_sync(cfg)
    assert r["last"]["accuracy"] > 0.6 and r["last"]["pair_accuracy"] > 0.6  # chance: 0.5
    assert r["last"]["cos_sync"] > r["last"]["cos_shifted"]
    # the expert drives train-face's sync loss: alone (l1_weight 0) it moves the renderer, and it falls
    from torch.utils.data import DataLoader

    from unit2av.face.data import StepKeys
    from unit2av.face.state import build_face_state
    from unit2av.face.train import train_step
    from unit2av.training import Dist

    opts = FaceTrainOptions(
        checkpoint_path=str(tmp_path / "face"),
        validation_interval=0,
        device="cpu",
        sync_expert=str(tmp_path / "sync" / "sync_best"),
    )
    state = build_face_state(_cfg(face_dataset, width=16, l1_weight=0.0, sync_weight=1.0), opts, Dist())
    windows = FaceWindows(read_face_manifest(face_dataset["train"]), seed=0, num_embeddings=face_dataset["k"])
    batch = next(iter(DataLoader(windows, batch_size=4, sampler=StepKeys(0, 4, 1))))
    before = [p.detach().clone() for p in state.g.parameters()]
    first = train_step(state, batch)
    assert first["sync"] > 0 and first["total"] == pytest.approx(first["sync"])
    assert any(not torch.equal(a, b) for a, b in zip(before, state.g.parameters()))
    later = [train_step(state, batch)["sync"] for _ in range(6)]
    assert later[-1] < first["sync"], (first, later)  # the renderer learns to please the expert


def test_sync_weight_without_expert_is_refused(face_dataset, tmp_path):  # noqa: F811
    with pytest.raises(Unit2AVError, match="sync expert"):
        train_face(_cfg(face_dataset, sync_weight=0.1), FaceTrainOptions(checkpoint_path=str(tmp_path), device="cpu"))


def test_command_line_and_config_file(face_dataset, tmp_path):  # noqa: F811
    from unit2av.commands import train_face as cmd

    (tmp_path / "face.json").write_text(json.dumps({"width": 16, "num_embeddings": face_dataset["k"], "batch_size": 1}))
    p = argparse.ArgumentParser()
    cmd.add_arguments(p)
    args = p.parse_args(
        [
            "--config",
            str(tmp_path / "face.json"),
            "--checkpoint-path",
            str(tmp_path / "ck"),
            "--input_training_file",
            str(face_dataset["train"]),
            "--training_steps",
            "1",
            "--validation_interval",
            "0",
            "--device",
            "cpu",
        ]
    )
    assert cmd.run(args) == 0
    assert load_torch(tmp_path / "ck" / "f_00000001")["face_config"]["width"] == 16
    (tmp_path / "bad.json").write_text(json.dumps({"widht": 3}))
    with pytest.raises(Unit2AVError, match="widht"):
        load_face_config(tmp_path / "bad.json")


def test_manifests_by_hand_and_built(face_dataset, tmp_path):  # noqa: F811
    clips, problems = build_face_manifest(face_dataset["root"] / "train")
    assert len(clips) == len(face_dataset["train_clips"]) and problems == []
    clip = face_dataset["train_clips"][0]
    (tmp_path / "m.jsonl").write_text(json.dumps({"video": clip["video"]}) + "\n\n")  # bbox/units beside the video
    [c] = read_face_manifest(tmp_path / "m.jsonl")
    assert c.bbox == clip["bbox"] and c.units == clip["units"]
    (tmp_path / "bad.jsonl").write_text("{'video': 1}\n")
    with pytest.raises(Unit2AVError, match="line 1"):
        read_face_manifest(tmp_path / "bad.jsonl")
    (tmp_path / "evil.bbox.pkl").write_bytes(pickle.dumps(argparse.Namespace()))
    (tmp_path / "evil.jsonl").write_text(json.dumps({"video": clip["video"], "bbox": "evil.bbox.pkl"}) + "\n")
    with pytest.raises(Unit2AVError):
        FaceWindows(read_face_manifest(tmp_path / "evil.jsonl"))


def test_bundled_portrait_opens_its_mouth_with_the_speech():
    """The astronaut portrait ships in the package: a loud frame's mouth area is darker than a silent one's."""
    from unit2av.demo.talking_face import base_face, render_clip

    t = np.arange(16000) / 16000
    wav = np.where(t < 0.5, 0.0, 0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)  # silence, then a vowel-ish tone
    frames, boxes, opening = render_clip(wav, base_face("astronaut"))
    assert frames[0].shape == (224, 224, 3) and opening[2] == 0 and opening[-3] > 0.9
    x1, y1, x2, y2 = boxes[-3].astype(int)
    mouth = slice(y1 + (y2 - y1) * 2 // 3, y1 + (y2 - y1) * 5 // 6), slice(x1 + (x2 - x1) // 3, x2 - (x2 - x1) // 3)
    assert frames[-3][mouth].mean() < frames[2][mouth].mean() - 15


def test_init_fine_tunes_given_weights_at_their_width(face_dataset, tmp_path):  # noqa: F811
    """--init: the renderer starts from an AV2AV-style container and takes its width from the weights."""
    from unit2av.face.model import FaceRenderer
    from unit2av.face.state import renderer_container
    from unit2av.io.safe import save_torch

    torch.manual_seed(11)
    init = FaceRenderer(face_dataset["k"], width=16)
    save_torch(renderer_container(init), tmp_path / "released.pt")
    cfg = _cfg(face_dataset, width=512, batch_size=1)  # the AV2AV default, overridden by the weights
    opts = FaceTrainOptions(
        checkpoint_path=str(tmp_path / "ck"),
        training_steps=1,
        validation_interval=0,
        device="cpu",
        init=str(tmp_path / "released.pt"),
    )
    state = train_face(cfg, opts)
    assert state.g.width == 16 and state.cfg.width == 16
    after = load_torch(tmp_path / "ck" / "f_00000001")["video"]
    before = init.state_dict()
    assert after["unit_embed.weight"].shape == before["unit_embed.weight"].shape
    # one small Adam step away from the initial weights, not a fresh initialisation
    w = "face_encoder_blocks.0.0.conv_block.0.weight"
    assert 0 < (after[w] - before[w]).abs().max() < 1e-2


def test_manifest_command_with_video_root(face_dataset, tmp_path, capsys):  # noqa: F811
    from unit2av.cli import main

    out = tmp_path / "faces.jsonl"
    assert main(["manifest", "--video_root", str(face_dataset["root"] / "train"), "--output_file", str(out)]) == 0
    clips = read_face_manifest(out)
    assert len(clips) == len(face_dataset["train_clips"])
    assert f"wrote {len(clips)} clips" in capsys.readouterr().out
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["manifest", "--video_root", str(empty), "--output_file", str(tmp_path / "x.jsonl")]) == 2
    assert not (tmp_path / "x.jsonl").exists()
