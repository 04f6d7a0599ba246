"""Copy the trained default models into ``src/unit2av/assets`` with the demo script.

    python scripts/bundle_default_models.py --vocoder_dir build/vocoder --face_dir build/face

Writes ``vocoder.pt`` (``{"generator", "config", "steps"}``), ``face_renderer.pt`` (AV2AV container
without vocoders), ``kmeans.pt`` and ``demo_script.json`` (held-out sentences as deduplicated units,
two voices as mean GE2E embeddings of their training utterances, the unit of silence).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from unit2av.io.safe import load_torch, save_torch

ASSETS = Path(__file__).resolve().parents[1] / "src" / "unit2av" / "assets"
VOICES = {"A": "101", "B": "124"}  # Korean male (ko+m3) and British English female (en-gb+f4)


def dedup(code: torch.Tensor) -> list[int]:
    keep = torch.ones_like(code, dtype=torch.bool)
    keep[1:] = code[1:] != code[:-1]
    return code[keep].tolist()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--vocoder_dir", default="build/vocoder")
    p.add_argument("--face_dir", default="build/face")
    p.add_argument(
        "--stage",
        default="nsf",
        help="the run folder inside --vocoder_dir whose g_best ships (else the baseline in --vocoder_dir)",
    )
    args = p.parse_args()
    voc, face = Path(args.vocoder_dir), Path(args.face_dir)
    best = voc / args.stage / "g_best"  # the bundled recipe, else the baseline
    g = load_torch(best if best.is_file() else voc / "g_best")
    save_torch({"generator": g["generator"], "config": g["config"], "steps": g["steps"]}, ASSETS / "vocoder.pt")
    f = load_torch(face / "checkpoints" / "f_best")
    save_torch(
        {"audio": {}, "video": f["video"], "face_config": f["face_config"], "steps": f["steps"]},
        ASSETS / "face_renderer.pt",
    )
    km = load_torch(voc / "km.pt")
    save_torch(km, ASSETS / "kmeans.pt")
    from unit2av.prepare.units import assign_units, extractor_for

    silence = int(torch.mode(assign_units(km, extractor_for(km)(np.zeros(16000, np.float32)))).values)
    records = json.loads((voc / "records.json").read_text())
    voices = {}
    for name, spk in VOICES.items():
        embs = [
            load_torch(voc / "units" / spk / f"{r['utt_id']}.pt")["spkr"]
            for r in records["train"]
            if r["speaker"] == spk
        ]
        mean = torch.stack(embs).mean(0)
        voices[name] = {"speaker": spk, "embedding": [round(float(x), 6) for x in mean / mean.norm()]}
    held = {r["speaker"]: r for r in records["held_out"]}  # the last held-out sentence of each voice
    sentences = []
    for spk, voice in (("101", "A"), ("124", "B"), ("113", "A")):
        r = held[spk]
        code = load_torch(voc / "units" / spk / f"{r['utt_id']}.pt")["code"]
        sentences.append(
            {"text": r["text"], "lang": r["lang"], "voice": voice, "source_speaker": spk, "units": dedup(code)}
        )
    script = {"voices": voices, "order": ["A", "B"], "silence_unit": silence, "sentences": sentences}
    (ASSETS / "demo_script.json").write_text(json.dumps(script))
    sizes = {p.name: p.stat().st_size for p in sorted(ASSETS.iterdir()) if p.is_file()}
    print(json.dumps(sizes, indent=1), "total MB", round(sum(sizes.values()) / 2**20, 2))


if __name__ == "__main__":
    main()
