"""unit2av batch: 8 small jobs (render and synth) from the sample clip and the bundled demo models.

One batch runs once for the module (2 local workers, one of them killed mid-job by the internal
test hook); the tests read its report and outputs, compare them with the single commands, rerun
it, and run it again on a local Ray instance.
"""

from __future__ import annotations

import json
import os
import re
import shutil

import numpy as np
import pytest
import torch
from _batch_helpers import cli_error, run_single
from conftest import SAMPLE_BBOX, SAMPLE_VIDEO

from unit2av.batch import run
from unit2av.batch.jobs import EXAMPLE, parse_jobs
from unit2av.batch.models import _KILL_HOOK, ModelCache
from unit2av.batch.schedule import Dispatcher
from unit2av.cli import main as cli_main
from unit2av.demo.video import asset
from unit2av.errors import Unit2AVError
from unit2av.io.checkpoints import open_container
from unit2av.io.media import iter_frames, read_audio_track
from unit2av.io.safe import dump_plain_pickle, load_plain_pickle
from unit2av.pipeline.pack import pack

KILLED_JOB = 4  # line of the job whose worker the hook kills once


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A job folder: the bundled models packed as languages aa/bb, short unit files, a bad box file."""
    d = tmp_path_factory.mktemp("batch_in")
    voc = open_container(asset("vocoder.pt"))
    (d / "vocoder.json").write_text(json.dumps(voc["config"]))
    pack({"aa": asset("vocoder.pt"), "bb": asset("vocoder.pt")}, asset("face_renderer.pt"), d / "av.pt")
    script = json.loads(asset("demo_script.json").read_text())
    units = [u for s in script["sentences"] for u in s["units"]]
    for i in range(4):  # 10 deduplicated units each
        (d / f"u{i}.txt").write_text(" ".join(map(str, units[3 + 10 * i : 13 + 10 * i])))
    torch.save(torch.tensor(script["voices"]["A"]["embedding"]), d / "voice_a.pt")
    dump_plain_pickle(load_plain_pickle(SAMPLE_BBOX)[:10], d / "short.bbox.pkl")  # 10 boxes for 70 frames
    common = {
        "in_vid_path": str(SAMPLE_VIDEO),
        "in_bbox_path": str(SAMPLE_BBOX),
        "unit2av_path": "av.pt",
        "config": "vocoder.json",
        "device": "cpu",
    }
    jobs = [
        {"command": "render", "in_unit_path": "u0.txt", "tgt_lang": "aa", "out_vid_path": "a.mp4", **common},
        {"command": "render", "in_unit_path": "u1.txt", "tgt_lang": "bb", **common},  # derived output
        {
            "command": "render",
            "in_unit_path": "u2.txt",
            "tgt_lang": "aa",
            "out_vid_path": "sub/c.mp4",
            **common,
            "blend": "hard",
        },
        {
            **common,
            "command": "render",
            "in_unit_path": "u3.txt",
            "tgt_lang": "aa",
            "out_vid_path": "missing.mp4",
            "in_vid_path": "no_such_video.mp4",
        },
        {"command": "render", "in_unit_path": "u3.txt", "tgt_lang": "bb", "out_vid_path": "d.mp4", **common},
        {
            **common,
            "command": "render",
            "in_unit_path": "u0.txt",
            "tgt_lang": "aa",
            "out_vid_path": "boxes.mp4",
            "in_bbox_path": "short.bbox.pkl",
        },
        {
            "command": "synth",
            "input_file": "u1.txt",
            "checkpoint": str(asset("vocoder.pt")),
            "speaker": "voice_a.pt",
            "dur_prediction": True,
            "device": "cpu",
        },
        {"command": "render", "in_unit_path": "u1.txt", "tgt_lang": "aa", "out_vid_path": "e.mp4", **common},
    ]
    lines = ["# 8 jobs: 6 good, a missing video (line 5) and a box file for 10 of 70 frames (line 7)"]
    lines += [json.dumps(j) for j in jobs]
    lines.insert(4, "")  # a blank line: job lines keep their file line numbers
    (d / "jobs.jsonl").write_text("\n".join(lines) + "\n")
    return d


@pytest.fixture(scope="module")
def first(setup, tmp_path_factory):
    """The batch, run once with 2 workers; the worker that starts job 4 is killed (SIGKILL) mid-job."""
    out = tmp_path_factory.mktemp("batch_out")
    flag = setup / "killed.flag"
    os.environ[_KILL_HOOK] = f"{KILLED_JOB}:{flag}"
    try:
        result = run(setup / "jobs.jsonl", out, workers=2, max_retries=1, progress=False)
    finally:
        del os.environ[_KILL_HOOK]
    assert flag.is_file()  # the hook did kill a worker
    return out, result


def _report(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def _decoded(path):
    frames = np.stack(list(iter_frames(path)))
    wav, sr = read_audio_track(path)
    return frames, wav, sr


def test_report_lists_every_job_with_status_and_reason(setup, first):
    out, result = first
    assert result.exit_code == 1 and result.counts == {"done": 6, "skipped": 0, "failed": 2}
    report = _report(out / "report.jsonl")
    assert report == result.entries
    assert [e["job"] for e in report] == [2, 3, 4, 6, 7, 8, 9, 10]  # file lines (comment, blank line)
    status = {e["job"]: e["status"] for e in report}
    assert [j for j, s in status.items() if s == "failed"] == [6, 8]
    derived = next(e for e in report if e["job"] == 3)["output"]
    assert derived == str((out / f"{SAMPLE_VIDEO.stem}.bb.mp4").resolve())
    for e in report:
        assert os.path.isfile(e["output"]) == (e["status"] == "done")
        if e["status"] == "done":
            assert e["reason"] is None and e["audio_seconds"] > 0.1 and e["seconds"] > 0
    assert next(e for e in report if e["job"] == 9)["output"].endswith("u1.wav")


def test_bad_jobs_fail_with_the_single_commands_line(setup, first, capsys):
    out, result = first
    reasons = {e["job"]: e["reason"] for e in result.entries if e["status"] == "failed"}
    common = [
        "--in-unit-path",
        str(setup / "u3.txt"),
        "--unit2av-path",
        str(setup / "av.pt"),
        "--config",
        str(setup / "vocoder.json"),
        "--device",
        "cpu",
        "--tgt-lang",
        "aa",
    ]
    missing = cli_error(
        [
            "render",
            *common,
            "--in-vid-path",
            str(setup / "no_such_video.mp4"),
            "--in-bbox-path",
            str(SAMPLE_BBOX),
            "--out-vid-path",
            str(out / "x.mp4"),
        ],
        capsys,
    )
    boxes = cli_error(
        [
            "render",
            *common,
            "--in-vid-path",
            str(SAMPLE_VIDEO),
            "--in-bbox-path",
            str(setup / "short.bbox.pkl"),
            "--out-vid-path",
            str(out / "x.mp4"),
        ],
        capsys,
    )
    assert reasons == {6: missing, 8: boxes}
    assert "not found" in missing and "10 boxes" in boxes


def test_good_outputs_equal_the_single_command(setup, first, tmp_path):
    """Job 2 (aa) and job 7 (bb) against `unit2av render` with the same inputs: same frames and audio."""
    out, _ = first
    for units, lang, name in (("u0.txt", "aa", "a.mp4"), ("u3.txt", "bb", "d.mp4")):
        argv = [
            "render",
            "--in-unit-path",
            str(setup / units),
            "--in-vid-path",
            str(SAMPLE_VIDEO),
            "--in-bbox-path",
            str(SAMPLE_BBOX),
            "--out-vid-path",
            str(tmp_path / name),
            "--tgt-lang",
            lang,
            "--unit2av-path",
            str(setup / "av.pt"),
            "--config",
            str(setup / "vocoder.json"),
            "--device",
            "cpu",
        ]
        run_single(argv)
        single, batch = _decoded(tmp_path / name), _decoded(out / name)
        assert single[0].shape == batch[0].shape and single[0].shape[0] >= 8
        assert np.array_equal(single[0], batch[0]), np.abs(single[0].astype(int) - batch[0]).max()
        assert single[2] == batch[2] and np.array_equal(single[1], batch[1])


def test_synth_job_equals_the_synth_command(setup, first, tmp_path):
    import soundfile as sf

    out, _ = first
    run_single(
        [
            "synth",
            "--checkpoint",
            str(asset("vocoder.pt")),
            "--input_file",
            str(setup / "u1.txt"),
            "--output_folder",
            str(tmp_path),
            "--speaker",
            str(setup / "voice_a.pt"),
            "--dur-prediction",
            "--device",
            "cpu",
        ]
    )
    (single,) = tmp_path.glob("u1_*.wav")
    a, sr_a = sf.read(single, dtype="int16")
    b, sr_b = sf.read(out / "u1.wav", dtype="int16")
    assert sr_a == sr_b == 16000 and len(a) > 0.2 * sr_a and np.array_equal(a, b)


def test_default_workers_follow_cores_memory_and_gpus(monkeypatch):
    from unit2av.batch import engine_local

    monkeypatch.setattr(engine_local.os, "cpu_count", lambda: 16)
    monkeypatch.setattr(engine_local, "available_memory_gib", lambda: 100.0)
    assert engine_local.default_workers(100) == 8  # 2 cores per worker
    assert engine_local.default_workers(3) == 3  # never more than jobs
    monkeypatch.setattr(engine_local, "available_memory_gib", lambda: 5.0)
    assert engine_local.default_workers(100) == 2  # 2 GiB each
    assert engine_local.default_workers(100, gpus=4) == 4  # one per GPU
    monkeypatch.setattr(engine_local, "available_memory_gib", lambda: 0.5)
    assert engine_local.default_workers(100) == 1


def test_killed_workers_job_is_retried_and_completes(first):
    _, result = first
    killed = next(e for e in result.entries if e["job"] == KILLED_JOB)
    assert killed["status"] == "done" and killed["attempts"] == 2
    assert all(e["attempts"] == 1 for e in result.entries if e["job"] != KILLED_JOB)


def test_rerun_skips_finished_and_keeps_failures(setup, first, tmp_path):
    out, result = first
    again = shutil.copytree(out, tmp_path / "out")
    rerun = run(setup / "jobs.jsonl", again, workers=1, progress=False)
    assert {e["job"]: e["status"] for e in rerun.entries} == {
        e["job"]: "skipped" if e["status"] == "done" else "failed" for e in result.entries
    }
    assert [e["reason"] for e in rerun.entries] == [e["reason"] for e in result.entries]
    assert rerun.exit_code == 1 and all(e["attempts"] == 0 for e in rerun.entries)
    # a lost output is rendered again; a half-written temporary file beside it does not count as done
    (again / "e.mp4").unlink()
    (again / ".e.mp4.partial.mp4").write_bytes(b"\0" * 100)
    third = run(setup / "jobs.jsonl", again, workers=1, progress=False, retry_failed=True)
    status = {e["job"]: e["status"] for e in third.entries}
    assert status[10] == "done" and status[2] == "skipped" and status[6] == "failed"
    assert next(e for e in third.entries if e["job"] == 6)["attempts"] == 1  # --retry-failed ran it again
    assert np.array_equal(_decoded(again / "e.mp4")[0], _decoded(out / "e.mp4")[0])


def test_ray_engine_gives_the_same_report(setup, first, tmp_path):
    ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'unit2av[ray]')")
    _, local = first
    flag = tmp_path / "ray_killed.flag"  # the actor that starts job 4 is killed too: Ray retries it
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": {_KILL_HOOK: f"{KILLED_JOB}:{flag}"}},
    )
    try:
        result = run(setup / "jobs.jsonl", tmp_path / "ray", engine="ray", workers=2, progress=False)
    finally:
        ray.shutdown()

    def same(entries, root):
        return [
            (
                e["job"],
                e["status"],
                e["reason"],
                os.path.relpath(e["output"], root),
                e.get("audio_seconds"),
                e.get("video_seconds"),
            )
            for e in entries
        ]

    assert same(result.entries, tmp_path / "ray") == same(local.entries, first[0])
    assert flag.is_file() and next(e for e in result.entries if e["job"] == KILLED_JOB)["attempts"] == 2
    assert np.array_equal(_decoded(tmp_path / "ray" / "a.mp4")[0], _decoded(first[0] / "a.mp4")[0])


# ----------------------------------------------------------------------------- no rendering below
def test_bad_job_files_are_refused_naming_the_line(setup, tmp_path, capsys):
    good = {
        "command": "render",
        "in_unit_path": "u0.txt",
        "in_vid_path": "v.mp4",
        "in_bbox_path": "b.pkl",
        "tgt_lang": "aa",
        "unit2av_path": "av.pt",
    }
    cases = {
        "unknown key(s) 'tgt_language'": [good, {**good, "tgt_language": "aa", "out_vid_path": "x.mp4"}],
        "also written by line 1": [good, {**good, "in_unit_path": "u1.txt"}],  # same derived output
        "unknown command 'dubb'": [good, {"command": "dubb"}],
        "missing key(s) 'in_bbox_path'": [good, {k: v for k, v in good.items() if k != "in_bbox_path"}],
        "outside --out-dir": [good, {**good, "out_vid_path": "../escape.mp4"}],
        "unknown key(s) 'models'": [good, {**good, "models": None, "out_vid_path": "y.mp4"}],
    }
    for message, jobs in cases.items():
        path = tmp_path / "jobs.jsonl"
        path.write_text("\n".join(json.dumps(j) for j in jobs) + "\n")
        with pytest.raises(Unit2AVError, match=re.escape(message)) as e:
            parse_jobs(path, tmp_path / "out")
        assert f"{path}:2:" in str(e.value) and "\n" not in str(e.value)
    path.write_text(json.dumps(good) + "\n{not json\n")
    assert "jobs.jsonl:2: not valid JSON" in cli_error(["batch", str(path), "--out-dir", str(tmp_path / "o")], capsys)
    assert not (tmp_path / "o").exists()  # nothing ran


def test_example_is_a_valid_job_file(tmp_path, capsys):
    assert cli_main(["batch", "--example"]) == 0
    assert capsys.readouterr().out == EXAMPLE
    (tmp_path / "jobs.jsonl").write_text(EXAMPLE)
    jobs = parse_jobs(tmp_path / "jobs.jsonl", tmp_path / "out")
    assert [j.command for j in jobs] == ["render", "render", "render", "synth", "dub", "av2unit", "translate"]
    assert jobs[4].outputs == [(tmp_path / "out" / "ep04.es.mp4").resolve()]  # keep_intermediate: not an output
    assert jobs[4].params["keep_intermediate"] == str((tmp_path / "out" / "stages" / "ep04").resolve())
    assert jobs[0].outputs == [(tmp_path / "out" / "ep01.ko.mp4").resolve()]
    assert jobs[0].params["in_vid_path"] == str((tmp_path / "videos" / "ep01.mp4").resolve())
    assert jobs[2].gpu and not jobs[0].gpu


def test_missing_ray_is_one_line_naming_the_extra(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray" or name.startswith("ray."):
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    with pytest.raises(Unit2AVError, match=r"pip install 'unit2av\[ray\]'") as e:
        run([{"command": "synth"}], tmp_path, engine="ray")
    assert "\n" not in str(e.value)


def test_model_cache_loads_each_model_once_and_shares_the_face_renderer(setup):
    cache = ModelCache()
    args = (setup / "av.pt", setup / "vocoder.json")
    voc_a, face_a = cache.renderer(*args, "aa", "cpu", "auto")
    assert cache.renderer(*args, "aa", "cpu", "auto")[0] is voc_a and cache.loads == 1
    voc_b, face_b = cache.renderer(*args, "bb", "cpu", "auto")
    assert voc_b is not voc_a and face_b is face_a and cache.loads == 2  # both vocoders kept, one renderer


def test_dispatcher_keeps_models_warm_and_bounds_retries(setup):
    def job(line, key):
        from unit2av.batch.jobs import Job

        return Job(line, "render", {}, [], str(line), key)

    d = Dispatcher([job(1, "aa"), job(2, "bb"), job(3, "bb"), job(4, "aa")], max_retries=1)
    assert d.take("w0").line == 1 and d.take("w1").line == 2
    d.finish("w0", {"line": 1, "status": "done"})
    assert d.take("w0").line == 4  # w0 holds aa's models: the next aa job, not job 3
    d.died("w1", "killed by signal 9")  # job 2 back to the front of the queue
    assert [j.line for j in d.pending] == [2, 3]
    assert d.take("w2").line == 2
    d.died("w2", "killed by signal 9")  # second death: max_retries=1 -> failed
    assert d.results[2]["status"] == "failed" and "killed by signal 9" in d.results[2]["reason"]
    assert d.results[2]["attempts"] == 2 and d.results == {1: d.results[1], 2: d.results[2]}
    assert d.take("w3").line == 3 and not d.pending and not d.finished


def test_input_paths_keep_the_names_they_were_written_with(tmp_path):
    """Inputs become absolute without following links (their errors name the file as written);
    outputs still resolve, so a link cannot carry them out of --out-dir."""
    link = tmp_path / "clips"
    link.symlink_to(SAMPLE_VIDEO.parent, target_is_directory=True)
    jobs = tmp_path / "jobs.jsonl"
    job = {"command": "synth", "input_file": f"clips/{SAMPLE_VIDEO.name}", "checkpoint": "x/../model.pt"}
    jobs.write_text(json.dumps(job) + "\n")
    (parsed,) = parse_jobs(jobs, tmp_path / "out")
    assert parsed.params["input_file"] == str(link / SAMPLE_VIDEO.name)
    assert parsed.params["checkpoint"] == str(tmp_path / "model.pt")  # normalised, still absolute
