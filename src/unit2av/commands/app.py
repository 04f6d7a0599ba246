"""Review face boxes and dub videos in the browser (a local Gradio page; `pip install 'unit2av[app]'`).

  unit2av app --root clips/                  then open http://127.0.0.1:7860
  unit2av app --root clips/ --models models/ --port 8000

Open a video under --root (or upload one), detect or load its face boxes, mark frame ranges as
None on the timeline, save the .bbox.pkl (the replaced file is kept as .bak), render units with the
bundled demo models or a container under --models, or translate and dub the video into another
language (mAV-HuBERT, UTUT and AV2AV checkpoints under --models or --root), and compare original and
dubbed side by side.
The page reads and writes only under --root; it listens on 127.0.0.1 unless --host says otherwise.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os

from ..errors import fail
from ..runtime.fast import BACKENDS

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)"
    )
    parser.add_argument("--port", type=int, default=7860, help="port to listen on (default 7860)")
    parser.add_argument(
        "--root",
        default=".",
        help="folder whose videos, box files and units the page may open and save (default: the current folder)",
    )
    parser.add_argument(
        "--models",
        default=None,
        help="folder of model checkpoints: AV2AV containers offered besides the bundled demo models, "
        "and the mAV-HuBERT / UTUT checkpoints of the translate-and-dub panel",
    )
    parser.add_argument(
        "--work-dir",
        "--work_dir",
        default=None,
        help="folder for renders and per-tab files (default: a temporary folder removed on exit)",
    )
    parser.add_argument(
        "--device",
        default="auto",
        help="device of every model (render, translate and dub): auto (CUDA when available), cpu, cuda ...",
    )
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        default="auto",
        help="inference path of renders, as `unit2av render --backend` (default auto)",
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run(args: argparse.Namespace) -> int:
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no telemetry, no version check (offline)
    try:
        import gradio  # noqa: F401
    except ImportError as e:
        raise fail(None, f"unit2av app needs Gradio ({e.name} is missing): pip install 'unit2av[app]'") from e
    from ..app.dub import RenderOptions
    from ..app.ui import launch
    from ..app.workspace import Workspace

    logging.getLogger("httpx").setLevel(logging.WARNING)  # gradio's own requests to itself
    ws = Workspace(args.root, args.models, args.work_dir)
    if not _is_loopback(args.host):
        log.warning(
            "listening on %s: anyone who can reach this address can read and write files under %s", args.host, ws.root
        )
    print(f"unit2av app: files under {ws.root}; open http://{args.host}:{args.port}", flush=True)
    try:
        launch(ws, args.host, args.port, RenderOptions(args.device, args.backend))
    except OSError as e:
        raise fail(None, f"cannot listen on {args.host}:{args.port} ({e}); pass another --port") from e
    finally:
        ws.close()
    return 0
