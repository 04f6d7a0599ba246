"""unit2av batch job kinds ``translate`` (UTUT) and ``av2unit`` (mAV-HuBERT) on the fixture checkpoints.

One batch of 7 jobs (3 translate, 1 bad; 3 av2unit, 1 bad) runs once for the module on 2 local
workers; the tests compare its outputs with the single commands and the fixtures' reference
strings, its failures with the single commands' error lines, and run the same jobs in this process
through one worker's ``ModelCache`` to count the model loads.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from _batch_helpers import cli_error, run_single
from conftest import SAMPLE, SAMPLE_VIDEO, SHARED

from unit2av.batch import run
from unit2av.batch.jobs import parse_jobs
from unit2av.batch.models import ModelCache, execute

UTUT = SHARED / "fixtures" / "utut"
UTUT_DICT = UTUT / "dict.txt"
UTUT_EXPECTED = dict(np.load(UTUT / "expected.npz"))
AV_EXPECTED = dict(np.load(SHARED / "fixtures" / "av2unit" / "expected.npz", allow_pickle=False))
SAMPLE_LIP = SAMPLE / "TRajLqEaWhQ_00002.lip.mp4"
WORKERS = 2


def _raw(case: str) -> str:
    return " ".join(map(str, UTUT_EXPECTED[f"{case}__units_raw"]))


@pytest.fixture(scope="module")
def setup(tmp_path_factory, av2unit_ckpt, utut_ckpt):
    """A job folder: unit files for three fixture cases and one with a unit outside the vocabulary."""
    d = tmp_path_factory.mktemp("stages_in").resolve()
    (d / "a.txt").write_text(_raw("en_es_n5"))
    (d / "b.txt").write_text(_raw("es_en_n27") + "\n")
    (d / "c.txt").write_text(_raw("en_es_n80"))
    (d / "bad.txt").write_text("5 5 1000 9")
    utut = {"utut_path": str(utut_ckpt), "utut_dict": str(UTUT_DICT), "device": "cpu"}
    av = {"in_vid_path": str(SAMPLE_VIDEO), "av2unit_path": str(av2unit_ckpt), "device": "cpu"}
    jobs = [
        {"command": "translate", "in_unit_path": "a.txt", "src_lang": "en", "tgt_lang": "es", **utut},  # derived
        {"command": "av2unit", "in_lip_path": str(SAMPLE_LIP), "out_unit_path": "units/av.txt", **av},
        {"command": "translate", "in_unit_path": "b.txt", "src_lang": "es", "tgt_lang": "en", **utut},
        {"command": "translate", "in_unit_path": "bad.txt", "src_lang": "en", "tgt_lang": "es", **utut},
        {"command": "av2unit", "modalities": "audio", **av},  # derived: <video stem>.txt
        {"command": "av2unit", "in_lip_path": str(SAMPLE_VIDEO), "out_unit_path": "units/bad.txt", **av},
        {
            "command": "translate",
            "in_unit_path": "c.txt",
            "out_unit_path": "c3.txt",
            "src_lang": "en",
            "tgt_lang": "es",
            "beam": 5,
            "nbest": 3,
            **utut,
        },
    ]
    lines = ["# translate and av2unit jobs; line 5 (a unit outside the vocabulary) and 7 (a video as crops) fail"]
    (d / "jobs.jsonl").write_text("\n".join(lines + [json.dumps(j) for j in jobs]) + "\n")
    return d


@pytest.fixture(scope="module")
def first(setup, tmp_path_factory):
    out = tmp_path_factory.mktemp("stages_out").resolve()
    return out, run(setup / "jobs.jsonl", out, workers=WORKERS, progress=False)


def _translate_argv(setup, utut_ckpt, name, out, src, tgt, *extra) -> list[str]:
    return [
        "translate",
        "--in-unit-path",
        str(setup / name),
        "--out-unit-path",
        str(out),
        "--utut-path",
        str(utut_ckpt),
        "--utut-dict",
        str(UTUT_DICT),
        "--src-lang",
        src,
        "--tgt-lang",
        tgt,
        "--device",
        "cpu",
        *extra,
    ]


def _av2unit_argv(av2unit_ckpt, out, *extra) -> list[str]:
    base = ["av2unit", "--in-vid-path", str(SAMPLE_VIDEO), "--out-unit-path", str(out)]
    return [*base, "--av2unit-path", str(av2unit_ckpt), "--device", "cpu", *extra]


def test_report_lists_every_job(setup, first):
    out, result = first
    assert result.exit_code == 1 and result.counts == {"done": 5, "skipped": 0, "failed": 2}
    report = [json.loads(line) for line in (out / "report.jsonl").read_text().splitlines()]
    assert report == result.entries and [e["job"] for e in report] == list(range(2, 9))
    assert [e["job"] for e in report if e["status"] == "failed"] == [5, 7]
    outputs = {e["job"]: os.path.relpath(e["output"], out) for e in report}
    assert outputs == {
        2: "a.es.txt",
        3: "units/av.txt",
        4: "b.en.txt",
        5: "bad.es.txt",
        6: f"{SAMPLE_VIDEO.stem}.txt",
        7: "units/bad.txt",
        8: "c3.txt",
    }
    for e in report:
        assert os.path.isfile(e["output"]) == (e["status"] == "done")
        assert e["command"] == ("translate" if e["job"] in (2, 4, 5, 8) else "av2unit")
        if e["status"] == "done":
            assert e["reason"] is None and e["units"] > 0 and e["attempts"] == 1
    av = next(e for e in report if e["job"] == 3)
    assert av["units"] == 140 and av["video_seconds"] == 2.8  # 70 mouth-crop frames of the sample clip
    assert not list(out.rglob("*.lip.mp4"))  # crops given or not used: none made


def test_outputs_equal_the_single_commands_and_the_reference(setup, first, tmp_path, utut_ckpt, av2unit_ckpt):
    out, _ = first
    run_single(_translate_argv(setup, utut_ckpt, "a.txt", tmp_path / "a.txt", "en", "es"), WORKERS)
    run_single(_translate_argv(setup, utut_ckpt, "b.txt", tmp_path / "b.txt", "es", "en"), WORKERS)
    run_single(
        _translate_argv(setup, utut_ckpt, "c.txt", tmp_path / "c3.txt", "en", "es", "--beam", "5", "--nbest", "3"),
        WORKERS,
    )
    run_single(_av2unit_argv(av2unit_ckpt, tmp_path / "av.txt", "--in-lip-path", str(SAMPLE_LIP)), WORKERS)
    run_single(_av2unit_argv(av2unit_ckpt, tmp_path / "audio.txt", "--modalities", "audio"), WORKERS)
    pairs = {
        "a.es.txt": "a.txt",
        "b.en.txt": "b.txt",
        "c3.txt": "c3.txt",
        "units/av.txt": "av.txt",
        f"{SAMPLE_VIDEO.stem}.txt": "audio.txt",
    }
    for batch, single in pairs.items():
        assert (out / batch).read_bytes() == (tmp_path / single).read_bytes(), batch
    # and both are the fixtures' reference strings (fairseq / AV2AV's own output)
    assert (out / "a.es.txt").read_text() == str(UTUT_EXPECTED["en_es_n5__unit_str"])
    assert (out / "b.en.txt").read_text() == str(UTUT_EXPECTED["es_en_n27__unit_str"])
    nbest = (out / "c3.txt").read_text().split("\n")
    assert len(nbest) == 3 and nbest[0] == str(UTUT_EXPECTED["en_es_n80__unit_str"]) and len(set(nbest)) == 3
    assert (out / "units/av.txt").read_text() == str(AV_EXPECTED["av__unit_str"])
    assert (out / f"{SAMPLE_VIDEO.stem}.txt").read_text() == str(AV_EXPECTED["a__unit_str"])


def test_bad_jobs_fail_with_the_single_commands_line(setup, first, tmp_path, utut_ckpt, av2unit_ckpt, capsys):
    _, result = first
    reasons = {e["job"]: e["reason"] for e in result.entries if e["status"] == "failed"}
    bad_units = cli_error(_translate_argv(setup, utut_ckpt, "bad.txt", tmp_path / "x.txt", "en", "es"), capsys)
    bad_crops = cli_error(_av2unit_argv(av2unit_ckpt, tmp_path / "y.txt", "--in-lip-path", str(SAMPLE_VIDEO)), capsys)
    assert reasons == {5: bad_units, 7: bad_crops}
    assert "unit 1000 is not in the UTUT vocabulary" in bad_units and str(setup / "bad.txt") in bad_units
    assert "224x224" in bad_crops and not list(tmp_path.glob("*.txt"))


def test_a_worker_loads_each_model_once(setup, first, tmp_path, utut_ckpt, av2unit_ckpt):
    """All seven jobs through one worker's cache (in this process): one mAV-HuBERT and one UTUT load."""
    out, result = first
    cache = ModelCache()
    jobs = parse_jobs(setup / "jobs.jsonl", tmp_path)
    results = [execute(job.to_dict(), cache) for job in jobs]
    assert cache.loads == 2
    assert [r["status"] for r in results] == [e["status"] for e in result.entries]
    assert [r["reason"] for r in results] == [e["reason"] for e in result.entries]
    for job, entry in zip(jobs, result.entries):
        if entry["status"] == "done":
            assert job.outputs[0].read_bytes() == Path(entry["output"]).read_bytes()
    translator = cache.translator(utut_ckpt, UTUT_DICT, "cpu")
    assert cache.av2unit(av2unit_ckpt, "cpu") is cache.av2unit(str(av2unit_ckpt), "cpu")
    assert cache.translator(str(utut_ckpt), str(UTUT_DICT), "cpu") is translator and cache.loads == 2
    cache.translator(utut_ckpt, None, "cpu")  # another dictionary: another model
    assert cache.loads == 3
