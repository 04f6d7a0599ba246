"""Job files: JSON lines, one job per line, checked whole before anything runs.

    {"command": "render", "in_unit_path": "u/ep01.txt", "in_vid_path": "v/ep01.mp4",
     "in_bbox_path": "v/ep01.bbox.pkl", "tgt_lang": "ko", "unit2av_path": "models/unit_av.pt"}

The other keys are the keyword parameters of the command's Python function. Input paths are
relative to the job file's folder, output paths to ``--out-dir`` (and must stay inside it); a
job without an output path gets one derived from its inputs. Blank lines and lines starting
with ``#`` are comments; line numbers count every line, so a job is known by its line.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import fail
from .registry import BatchCommand, get_command

EXAMPLE = """\
# unit2av batch job file: JSON lines, one job per line ('#' lines and blank lines are ignored).
# "command" names the job; the other keys are the keyword parameters of its Python function
# (render: unit2av.render). Input paths are relative to this file, output paths to --out-dir.
# A job without an output path gets one derived from its inputs (render: <video stem>.<tgt_lang>.mp4).
{"command": "render", "in_unit_path": "units/ep01.ko.txt", "in_vid_path": "videos/ep01.mp4", \
"in_bbox_path": "videos/ep01.bbox.pkl", "tgt_lang": "ko", "unit2av_path": "models/unit_av_renderer.pt"}
{"command": "render", "in_unit_path": "units/ep01.en.txt", "in_vid_path": "videos/ep01.mp4", \
"in_bbox_path": "videos/ep01.bbox.pkl", "tgt_lang": "en", "unit2av_path": "models/unit_av_renderer.pt", \
"out_vid_path": "english/ep01.mp4", "blend": "hard"}
{"command": "render", "in_unit_path": "units/ep02.ko.txt", "in_vid_path": "videos/ep02.mp4", \
"in_bbox_path": "videos/ep02.bbox.pkl", "tgt_lang": "ko", "unit2av_path": "models/unit_av_renderer.pt", \
"device": "cuda"}
# synth: units -> speech (a .wav), with the vocoder of a g_ checkpoint or an AV2AV container
{"command": "synth", "input_file": "units/ep03.ko.pt", "checkpoint": "models/g_best", "dur_prediction": true}
# dub: the whole pipeline (mAV-HuBERT units -> UTUT translation -> speech and lips) from the video alone
{"command": "dub", "in_vid_path": "videos/ep04.mp4", "src_lang": "en", "tgt_lang": "es", \
"av2unit_path": "models/mavhubert_large_noise.pt", "utut_path": "models/utut_sts_ft.pt", \
"unit2av_path": "models/unit_av_renderer.pt", "keep_intermediate": "stages/ep04"}
# av2unit: mAV-HuBERT units of a video (its audio and mouth crops) -> <video stem>.txt
{"command": "av2unit", "in_vid_path": "videos/ep05.mp4", "in_lip_path": "videos/ep05.lip.mp4", \
"av2unit_path": "models/mavhubert_large_noise.pt"}
# translate: UTUT unit-to-unit translation of a units file -> <units stem>.<tgt_lang>.txt
{"command": "translate", "in_unit_path": "units/ep05.en.txt", "src_lang": "en", "tgt_lang": "es", \
"utut_path": "models/utut_sts_ft.pt", "beam": 5}
"""


@dataclass
class Job:
    """One checked job, its paths resolved.

    Attributes:
        line: 1-based line of the job file (the job's name in the report).
        command: the registry entry's name.
        params: keyword arguments for the function (paths absolute, as strings).
        outputs: the output files; the job is done when all exist (they are written atomically).
        key: hash of the resolved job (outputs relative to ``--out-dir``), to match an earlier run's report.
        model_key: the parameters choosing its models (jobs with equal keys share warm models).
    """

    line: int
    command: str
    params: dict
    outputs: list[Path]
    key: str
    model_key: str
    gpu: bool = False
    attempts: int = field(default=0, compare=False)

    def to_dict(self) -> dict:
        """Plain data for a worker process or a Ray actor."""
        return {"line": self.line, "command": self.command, "params": self.params}


def _is_path_value(value) -> bool:
    return value is None or isinstance(value, (str, os.PathLike))


def _resolve_out(value, out_dir: Path, where: str, key: str) -> Path:
    path = Path(value)
    resolved = (out_dir / path).resolve() if not path.is_absolute() else path.resolve()
    if not resolved.is_relative_to(out_dir):
        raise fail(where, f"{key} {str(value)!r} is outside --out-dir {out_dir}")
    return resolved


def check_job(obj, where: str, base: Path, out_dir: Path, line: int) -> Job:
    """Check one parsed job and resolve its paths.

    Args:
        obj: the parsed JSON value.
        where: ``"<job file>:<line>"`` for messages.
        base: folder input paths are relative to.
        out_dir: folder output paths are relative to (absolute, resolved).
        line: the job's line number.

    Raises:
        Unit2AVError: not an object, unknown command, unknown or missing keys, paths not strings.
    """
    if not isinstance(obj, dict):
        raise fail(where, f"a job is a JSON object, found {type(obj).__name__}")
    if "command" not in obj:
        raise fail(where, 'the job has no "command" key')
    cmd: BatchCommand = get_command(obj["command"], where)
    allowed = cmd.parameters()
    params = {k: v for k, v in obj.items() if k != "command"}
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise fail(
            where, f"unknown key(s) {', '.join(map(repr, unknown))} for {cmd.name} (it takes: {', '.join(allowed)})"
        )
    missing = [
        k
        for k, p in allowed.items()
        if p.default is inspect.Parameter.empty and k not in params and k not in cmd.outputs
    ]
    if missing:
        raise fail(where, f"missing key(s) {', '.join(map(repr, missing))} for {cmd.name}")
    for k in cmd.inputs + cmd.outputs + cmd.output_folders:
        if k in params and not _is_path_value(params[k]) and not (k in cmd.inputs and type(params[k]) is int):
            raise fail(where, f"{k} must be a path string, found {json.dumps(params[k])}")
    for k in cmd.inputs:
        if isinstance(params.get(k), str) and not params[k].lstrip("-").isdigit():  # (synth's speaker: an id)
            params[k] = os.path.abspath(base / params[k])  # links kept: messages name the file as written
    outputs = []
    for k in cmd.outputs:
        if params.get(k) is None:
            params[k] = cmd.derive[k](params)
        path = _resolve_out(params[k], out_dir, where, k)
        params[k] = str(path)
        outputs.append(path)
    for k in cmd.output_folders:
        if params.get(k) is not None:
            params[k] = str(_resolve_out(params[k], out_dir, where, k))
    same = {
        k: os.path.relpath(v, out_dir) if k in cmd.outputs + cmd.output_folders and v is not None else v
        for k, v in params.items()
    }
    key = hashlib.sha1(json.dumps([cmd.name, same], sort_keys=True).encode()).hexdigest()[:16]
    model_key = json.dumps([cmd.name] + [params.get(k) for k in cmd.model_params])
    device = str(params.get("device", "auto"))
    return Job(line, cmd.name, params, outputs, key, model_key, gpu=device.startswith("cuda"))


def parse_jobs(source, out_dir: str | os.PathLike) -> list[Job]:
    """Read and check every job; refuse the whole file on the first problem.

    Args:
        source: a job file (JSON lines) or a list of job dicts (input paths relative to the
            current folder; ``line`` is the position in the list, from 1).
        out_dir: the output folder.

    Returns:
        The jobs, in file order.

    Raises:
        Unit2AVError: a missing or unreadable file, bad JSON, a bad job, two jobs writing the
            same output (each message names the line), or no jobs at all.
    """
    out = Path(out_dir).resolve()
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise fail(path, "job file not found")
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as e:
            raise fail(path, f"cannot read the job file ({e})") from e
        base, name = Path(os.path.abspath(path)).parent, str(path)
        entries = []
        for i, text in enumerate(lines, 1):
            if not text.strip() or text.lstrip().startswith("#"):
                continue
            try:
                entries.append((i, json.loads(text)))
            except json.JSONDecodeError as e:
                raise fail(f"{name}:{i}", f"not valid JSON ({e.msg} at column {e.colno})") from e
    else:
        base, name = Path.cwd(), "jobs"
        entries = list(enumerate(source, 1))
    jobs, owner = [], {}
    for i, obj in entries:
        job = check_job(obj, f"{name}:{i}", base, out, i)
        for o in job.outputs:
            if o in owner:
                raise fail(f"{name}:{i}", f"output {o} is also written by line {owner[o]}; outputs must be unique")
            owner[o] = i
        jobs.append(job)
    if not jobs:
        raise fail(name, "holds no jobs")
    return jobs


def is_done(job: Job) -> bool:
    """Every output exists (outputs are written atomically, so an existing file is complete)."""
    return all(o.is_file() for o in job.outputs)


__all__ = ["EXAMPLE", "Job", "check_job", "is_done", "parse_jobs"]
