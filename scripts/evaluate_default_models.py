"""Measure the bundled default models on held-out data (numbers for ``assets/MODEL_CARD.md``).

    python scripts/evaluate_default_models.py --vocoder_dir build/vocoder --face_dir build/face --out eval.json

(a) Voice: for every voice A, its held-out sentences are synthesised with A's embedding (mean
    GE2E embedding of A's training utterances); the GE2E cosine similarity of the synthetic speech to
    A's real held-out speech must exceed its similarity to every other voice B's real speech. Done
    with A's own held-out units ("own units") and with the other voices' held-out units ("cross").
(b) Face: on fixed windows of the held-out clips (reference half from another window), the mouth-half
    L1 of the renderer vs copying the reference window's mouth, and the Pearson correlation of the
    mouth opening measured in the generated crops with the ground-truth opening that drove the
    synthetic face (and with the opening measured the same way in the real crops).
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

MOUTH_ROWS, MOUTH_COLS = slice(52, 90), slice(30, 76)  # mouth area of the astronaut's 96x96 crop
DARK_LEVEL, DARK_RANGE = 110.0, 60.0  # grey levels: darker than 110 counts, fully at 50


def mouth_opening(crops_bgr: torch.Tensor) -> np.ndarray:
    """(N, 3, 96, 96) float [0, 1] BGR -> (N,) dark-interior area of the mouth (soft pixel count)."""
    rgb_w = torch.tensor([0.114, 0.587, 0.299]).view(1, 3, 1, 1)  # BGR luma weights
    grey = (crops_bgr * rgb_w).sum(1)[:, MOUTH_ROWS, MOUTH_COLS] * 255
    return ((DARK_LEVEL - grey) / DARK_RANGE).clamp(0, 1).sum(dim=(1, 2)).numpy()


def pearson(a, b) -> float:
    return float(np.corrcoef(np.asarray(a, float), np.asarray(b, float))[0, 1])


def evaluate_face(face_dir: Path, vocoder_dir: Path, model) -> dict:
    from unit2av.demo.talking_face import mouth_track
    from unit2av.face.data import HALF, FaceWindows, FixedWindows, read_face_manifest

    clips = read_face_manifest(face_dir / "valid" / "manifest.jsonl")
    windows = FaceWindows(clips, seed=0)
    fixed = FixedWindows(windows, per_clip=6)
    gen_l1, copy_l1, o_gen, o_real, o_true = [], [], [], [], []
    import soundfile as sf

    truth = {}
    for c, clip in enumerate(clips):
        stem = Path(clip.video).stem
        wav, sr = sf.read(str(vocoder_dir / "corpus" / stem.split("_")[0] / f"{stem}.wav"), dtype="float32")
        truth[c] = mouth_track(wav, sr)[0]
    with torch.no_grad():
        for i in range(len(fixed)):
            item = fixed[i]
            out = model(item["units"][None], item["faces"])
            tgt, ref = item["target"], item["faces"][:, 3:]
            gen_l1.append(float(F.l1_loss(out[:, :, HALF:], tgt[:, :, HALF:])))
            copy_l1.append(float(F.l1_loss(ref[:, :, HALF:], tgt[:, :, HALF:])))
            o_gen += mouth_opening(out).tolist()
            o_real += mouth_opening(tgt).tolist()
            s = item["start"]
            o_true += truth[item["clip"]][s : s + 10].tolist()
    return {
        "clips": len(clips),
        "windows": len(fixed),
        "lower_l1_renderer": float(np.mean(gen_l1)),
        "lower_l1_copy_reference": float(np.mean(copy_l1)),
        "windows_renderer_better": float(np.mean(np.array(gen_l1) < np.array(copy_l1))),
        "pearson_opening_generated_vs_truth": pearson(o_gen, o_true),
        "pearson_opening_generated_vs_real_crops": pearson(o_gen, o_real),
        "pearson_opening_real_crops_vs_truth": pearson(o_real, o_true),
    }


def voiced_share(wav: np.ndarray, sr: int = 16000, frame: int = 1024, hop: int = 320) -> float:
    """Share of non-silent 64 ms frames that are periodic (normalised autocorrelation peak > 0.5 at 70-400 Hz)."""
    loud = periodic = 0
    lo, hi = sr // 400, sr // 70
    for i in range(0, len(wav) - frame, hop):
        x = wav[i : i + frame] - wav[i : i + frame].mean()
        if np.sqrt(np.mean(x**2)) < 0.1 * np.sqrt(np.mean(wav**2)):
            continue
        loud += 1
        ac = np.correlate(x, x, "full")[frame - 1 :]
        periodic += ac[lo + np.argmax(ac[lo:hi])] > 0.5 * ac[0]
    return periodic / max(loud, 1)


def median_f0(wav: np.ndarray, sr: int = 16000) -> float:
    """Median f0 (Hz) of the voiced 20 ms frames (``unit2av.io.audio.frame_f0``); 0 when none is voiced."""
    from unit2av.spectral import frame_f0

    track = frame_f0(torch.from_numpy(np.asarray(wav, np.float32)), sr, 320)
    voiced = track[track > 0]
    return float(voiced.median()) if voiced.numel() else 0.0


class HeldOut:
    """The held-out utterances, each voice's embedding, and the model's speech, each computed once.

    ``voice[s]``: the unit-norm mean GE2E embedding of voice s's training utterances;
    ``synth(r, s)``: utterance r's units voiced with ``voice[s]`` (cached), float32 (T,).
    """

    def __init__(self, vocoder_dir: Path, model):
        self.dir, self.model = vocoder_dir, model
        self.records = json.loads((vocoder_dir / "records.json").read_text())
        self.voice = {}
        for q in self.records["train"]:
            self.voice.setdefault(q["speaker"], []).append(self.units(q)["spkr"])
        self.voice = {s: (m / m.norm()) for s, m in ((s, torch.stack(e).mean(0)) for s, e in self.voice.items())}
        self._cache: dict[tuple[str, str], np.ndarray] = {}

    def units(self, r: dict) -> dict:
        from unit2av.io.safe import load_torch

        return load_torch(self.dir / "units" / r["speaker"] / f"{r['utt_id']}.pt")

    def synth(self, r: dict, speaker: str) -> np.ndarray:
        from unit2av.vocoder.synth import synthesize

        key = (r["utt_id"], speaker)
        if key not in self._cache:
            wav = synthesize(self.model, self.units(r)["code"], self.voice[speaker].view(1, 1, -1))[0]
            self._cache[key] = np.asarray(wav, np.float32).reshape(-1)
        return self._cache[key]


def evaluate_voice(held: HeldOut) -> dict:
    from unit2av.prepare.speaker import SpeakerEncoder

    enc = SpeakerEncoder.load()
    records = held.records
    spks = sorted({r["speaker"] for r in records["held_out"]})

    def unit_norm(v):
        return v / np.linalg.norm(v)

    real = {
        s: unit_norm(np.mean([enc.embed(*_wav(r["path"])) for r in records["held_out"] if r["speaker"] == s], 0))
        for s in spks
    }
    out = {"voiced_share": {}}
    for mode in ("own_units", "cross"):
        sims = {}
        for a in spks:
            srcs = [r for r in records["held_out"] if (r["speaker"] == a) == (mode == "own_units")]
            embs, voiced = [], []
            for r in srcs:
                wav = held.synth(r, a)
                embs.append(enc.embed(wav, 16000))
                if mode == "own_units":
                    real_wav = _wav(r["path"])[0]
                    voiced.append((voiced_share(wav), voiced_share(real_wav), median_f0(wav), median_f0(real_wav)))
            if voiced:
                out["voiced_share"][a] = {
                    "synthetic": float(np.mean([v[0] for v in voiced])),
                    "real": float(np.mean([v[1] for v in voiced])),
                    "median_f0_synthetic": float(np.mean([v[2] for v in voiced])),
                    "median_f0_real": float(np.mean([v[3] for v in voiced])),
                }
            sims[a] = {b: float(np.mean([e @ real[b] for e in embs])) for b in spks}
        pairs = [(a, b) for a, b in itertools.permutations(spks, 2)]
        wins = [sims[a][a] > sims[a][b] for a, b in pairs]
        out[mode] = {
            "similarity": sims,
            "pairs": len(pairs),
            "pairs_won": int(sum(wins)),
            "all_pairs": bool(all(wins)),
            "mean_own": float(np.mean([sims[a][a] for a in spks])),
            "mean_other": float(np.mean([sims[a][b] for a, b in pairs])),
        }
    return out


def cepstral_check(held: HeldOut) -> dict:
    """A voice check that shares nothing with GE2E (which the previous recipe trained with).

    A logistic-regression voice classifier on utterance statistics of 20 mel-cepstra (mean, std,
    std of deltas; 25 ms frames, loud frames only) is fitted on the real training utterances and
    applied to the synthetic held-out utterances (A's units, A's embedding); also the mean
    cepstral distance (c1-c12) between each synthetic utterance and the real one, frame by frame
    (own units keep the real timing).
    """
    from scipy.fft import dct
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from unit2av.prepare.units import LogMelFeatures

    records = held.records
    logmel = LogMelFeatures(num_mels=40, win_size=400, hop_size=160)

    def loud(f):
        e = f.mean(1)
        return e > e.max() - 3.0

    def stats(wav):
        f = logmel(np.asarray(wav, np.float32))
        c = dct(f, type=2, norm="ortho", axis=1)[:, :20][loud(f)]
        return np.concatenate([c.mean(0), c.std(0), np.diff(c, axis=0).std(0)])

    clf = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000))
    clf.fit([stats(_wav(r["path"])[0]) for r in records["train"]], [r["speaker"] for r in records["train"]])

    real_hits = synth_hits = 0
    distances = []
    for r in records["held_out"]:
        wav = held.synth(r, r["speaker"])  # the same speech (a) measured
        real = _wav(r["path"])[0]
        real_hits += clf.predict([stats(real)])[0] == r["speaker"]
        synth_hits += clf.predict([stats(wav)])[0] == r["speaker"]
        a, b = logmel(real), logmel(wav)
        n = min(len(a), len(b))
        ca, cb = (dct(x[:n], type=2, norm="ortho", axis=1)[:, 1:13] for x in (a, b))
        distances.append(float(np.mean(np.sqrt(((ca - cb) ** 2).sum(1))[loud(a[:n])])))
    return {
        "utterances": len(records["held_out"]),
        "classifier_real_correct": int(real_hits),
        "classifier_synthetic_correct": int(synth_hits),
        "cepstral_distance": float(np.mean(distances)),
    }


def _wav(path):
    from unit2av.io.audio import load_audio

    return load_audio(path, 16000)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--vocoder_dir", default="build/vocoder")
    p.add_argument("--face_dir", default="build/face")
    p.add_argument("--out", default="build/eval.json")
    p.add_argument("--only", choices=("face", "voice"), default=None)
    p.add_argument("--vocoder", default=None, help="evaluate this generator checkpoint instead of the bundled one")
    args = p.parse_args()
    torch.set_num_threads(1)
    from unit2av.demo.video import load_default_models

    vocoder, face = load_default_models("cpu")
    if args.vocoder:
        from unit2av.vocoder.checkpoint import load_vocoder

        vocoder = load_vocoder(args.vocoder).remove_weight_norm()
    result = {}
    if args.only in (None, "face"):
        result["face"] = evaluate_face(Path(args.face_dir), Path(args.vocoder_dir), face)
    if args.only in (None, "voice"):
        held = HeldOut(Path(args.vocoder_dir), vocoder)
        result["voice"] = evaluate_voice(held)
        result["voice"]["cepstral_check"] = cepstral_check(held)
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
