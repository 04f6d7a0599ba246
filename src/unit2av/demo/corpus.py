"""A small multi-speaker speech corpus generated offline with espeak-ng.

Tests, the demo and users without data get real (synthetic) speech laid out like the
Korean zeroth corpus::

    out_dir/<spk>/<spk>_<chapter>_<utt>.wav      e.g. out_dir/113/113_003_0012.wav

The speaker id is a numeric string (the first ``_`` token of the utterance id). Audio is
16 kHz mono 16-bit PCM. Voices mix Korean and English with different espeak-ng variants,
pitch and speed so that they sound like different people. Voices of one language speak
the same sentences (same order), which lets tests compare "same text, other speaker"
against "same speaker, other text".
"""

from __future__ import annotations

import io
import logging
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from ..errors import Unit2AVError, fail
from ..io.audio import resample, save_wav
from ..timing import SAMPLE_RATE

log = logging.getLogger(__name__)

ESPEAK = "espeak-ng"  # the binary looked up on PATH
ESPEAK_TIMEOUT_S = 30.0  # one utterance never takes this long; guards against a hung process
PEAK_LEVEL = 0.9  # utterances are scaled so their peak sits at this level (no clipping after resampling)


@dataclass(frozen=True)
class Voice:
    """One synthetic speaker.

    Args:
        speaker: numeric speaker id used in file names (``"113"``).
        voice: espeak-ng voice with optional variant (``"ko+f3"``, ``"en-us+m3"``).
        lang: ``"ko"`` or ``"en"``: which bundled sentence list the speaker reads.
        speed: words per minute (espeak-ng ``-s``; its default is 175).
        pitch: 0..99 (espeak-ng ``-p``; its default is 50).
    """

    speaker: str
    voice: str
    lang: str
    speed: int = 160
    pitch: int = 50


# Default speakers: 2 Korean + 2 English, distinct variants, pitches and speeds.
DEFAULT_VOICES: tuple[Voice, ...] = (
    Voice("101", "ko+m3", "ko", speed=150, pitch=35),
    Voice("102", "ko+f3", "ko", speed=170, pitch=75),
    Voice("113", "en-us+m1", "en", speed=160, pitch=30),
    Voice("124", "en-gb+f4", "en", speed=145, pitch=80),
)
# More speakers for callers who want them (``make_corpus(voices=DEFAULT_VOICES + EXTRA_VOICES)``).
EXTRA_VOICES: tuple[Voice, ...] = (
    Voice("135", "en-us+m7", "en", speed=185, pitch=55),
    Voice("146", "ko+f1", "ko", speed=140, pitch=60),
)

# Bundled sentences (short, everyday speech; written for this project).
SENTENCES: dict[str, tuple[str, ...]] = {
    "ko": (
        "오늘은 날씨가 정말 맑고 따뜻합니다.",
        "저는 아침마다 공원에서 산책을 해요.",
        "도서관은 여섯 시에 문을 닫습니다.",
        "이 버스는 시청 앞에서 멈춥니다.",
        "주말에 친구들과 바다에 갈 거예요.",
        "커피 한 잔과 빵 두 개 주세요.",
        "우리 동네에는 작은 시장이 있어요.",
        "내일 회의는 오후 세 시에 시작합니다.",
        "고양이가 창가에서 낮잠을 자고 있어요.",
        "새 휴대폰은 배터리가 오래갑니다.",
        "기차가 십 분 늦게 도착했습니다.",
        "동생은 요즘 피아노를 배우고 있어요.",
    ),
    "en": (
        "The weather is clear and warm today.",
        "I take a walk in the park every morning.",
        "The library closes at six in the evening.",
        "This bus stops in front of the city hall.",
        "We will drive to the coast this weekend.",
        "Please bring me a cup of tea and two rolls.",
        "There is a small market in our street.",
        "The meeting starts at three tomorrow afternoon.",
        "A grey cat is sleeping by the window.",
        "The new phone keeps its charge for two days.",
        "The train arrived ten minutes late.",
        "My brother is learning to play the piano.",
    ),
}


def espeak_available() -> bool:
    """True when the ``espeak-ng`` binary is on ``PATH``."""
    return shutil.which(ESPEAK) is not None


def _espeak_exe() -> str:
    exe = shutil.which(ESPEAK)
    if exe is None:
        raise fail(None, "espeak-ng not found on PATH: install it (e.g. `apt-get install espeak-ng`)")
    return exe


def _voice_names(exe: str, which: str) -> set[str]:
    """Lower-case names espeak-ng accepts for ``--voices`` / ``--voices=variant`` entries."""
    out = subprocess.run(
        [exe, f"--voices{which}"], capture_output=True, text=True, timeout=ESPEAK_TIMEOUT_S, check=False
    ).stdout
    names = set()
    for line in out.splitlines()[1:]:  # skip the header row
        cols = line.split()
        if len(cols) < 5:
            continue
        # columns: priority, language, age/gender, voice name, file, (other languages ...)
        names.update({cols[1].lower(), cols[3].lower(), cols[4].lower(), cols[4].rsplit("/", 1)[-1].lower()})
    return names


def check_voice(voice: str) -> None:
    """Raise ``Unit2AVError`` unless espeak-ng knows ``voice`` (``"lang"`` or ``"lang+variant"``).

    espeak-ng silently falls back to its default voice on unknown names; this catches typos.
    """
    exe = _espeak_exe()
    base, _, variant = voice.partition("+")
    if base.lower() not in _voice_names(exe, ""):
        raise fail(exe, f"espeak-ng has no voice {base!r} (see `espeak-ng --voices`)")
    if variant and variant.lower() not in _voice_names(exe, "=variant"):
        raise fail(exe, f"espeak-ng has no variant {variant!r} (see `espeak-ng --voices=variant`)")


def synthesize_espeak(
    text: str, voice: str, speed: int = 160, pitch: int = 50, sample_rate: int = SAMPLE_RATE
) -> np.ndarray:
    """Speak ``text`` with espeak-ng.

    Args:
        text: what to say.
        voice: espeak-ng voice (``"en-us+f3"``).
        speed: words per minute (``-s``).
        pitch: 0..99 (``-p``).
        sample_rate: output rate (espeak-ng speaks at 22.05 kHz; resampled).

    Returns:
        ``(T,)`` float32 mono waveform in [-1, 1].

    Raises:
        Unit2AVError: espeak-ng is missing or fails (unknown voice ...).
    """
    exe = _espeak_exe()
    cmd = [exe, "-v", voice, "-s", str(int(speed)), "-p", str(int(pitch)), "--stdout", text]
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=ESPEAK_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise fail(exe, f"espeak-ng failed for voice {voice!r}: {e}") from e
    if proc.returncode != 0 or len(proc.stdout) < 64:
        msg = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise fail(exe, f"espeak-ng failed for voice {voice!r}: {msg[0] if msg else 'no audio produced'}")
    wav, sr = sf.read(io.BytesIO(proc.stdout), dtype="float32", always_2d=True)
    wav = resample(wav.mean(axis=1), int(sr), sample_rate)
    peak = float(np.abs(wav).max()) if wav.size else 0.0
    if peak <= 0.0:
        raise fail(exe, f"espeak-ng produced silence for voice {voice!r} and text {text!r}")
    return (wav * (PEAK_LEVEL / peak)).astype(np.float32)


def _as_voice(v: Voice | dict, index: int) -> Voice:
    if isinstance(v, Voice):
        return v
    if isinstance(v, dict):
        return Voice(**v)
    raise Unit2AVError(f"voice #{index}: expected a Voice or a dict, got {type(v).__name__}")


def make_corpus(
    out_dir: str | os.PathLike,
    voices: list[Voice | dict] | None = None,
    sentences_per_voice: int = 6,
    sample_rate: int = SAMPLE_RATE,
    seed: int = 0,
    chapters: int = 1,
    sentences: dict[str, list[str]] | None = None,
) -> list[dict]:
    """Generate a zeroth-like corpus with espeak-ng.

    Utterance ``i`` of a speaker goes to chapter ``i % chapters + 1`` and is numbered
    ``i // chapters + 1`` inside it, so ``out_dir/113/113_001_0001.wav`` is the first.
    Every speaker of a language reads the same sentences in the same order, starting at
    an offset drawn from ``seed`` (the list wraps around when more are asked for).

    Args:
        out_dir: root folder (created).
        voices: speakers (``Voice`` or dicts of its fields); ``None`` = ``DEFAULT_VOICES``.
        sentences_per_voice: utterances per speaker.
        sample_rate: output rate in Hz.
        seed: picks the first sentence of each language.
        chapters: chapters per speaker (the middle token of the utterance id).
        sentences: ``{lang: [text, ...]}`` replacing the bundled ``SENTENCES``.

    Returns:
        One record per utterance: ``{"speaker", "utt_id", "path", "text", "voice", "lang",
        "num_samples"}`` (``path`` is a ``str``).

    Raises:
        Unit2AVError: espeak-ng missing or failing, unknown language, bad arguments.
    """
    _espeak_exe()
    if sentences_per_voice < 1 or chapters < 1:
        raise Unit2AVError("make_corpus: sentences_per_voice and chapters must be >= 1")
    voices = [_as_voice(v, i) for i, v in enumerate(DEFAULT_VOICES if voices is None else voices)]
    for v in voices:
        check_voice(v.voice)
    pools = {k: list(v) for k, v in (sentences or SENTENCES).items()}
    rng = np.random.default_rng(seed)
    offsets = {lang: int(rng.integers(len(pool))) for lang, pool in sorted(pools.items()) if pool}
    out_dir = Path(out_dir)
    records = []
    for v in voices:
        if v.lang not in offsets:
            raise Unit2AVError(f"voice {v.voice!r} (speaker {v.speaker}): no sentences for language {v.lang!r}")
        pool = pools[v.lang]
        for i in range(sentences_per_voice):
            text = pool[(offsets[v.lang] + i) % len(pool)]
            utt_id = f"{v.speaker}_{i % chapters + 1:03d}_{i // chapters + 1:04d}"
            path = out_dir / v.speaker / f"{utt_id}.wav"
            wav = synthesize_espeak(text, v.voice, v.speed, v.pitch, sample_rate)
            save_wav(path, wav, sample_rate)
            records.append(
                {
                    "speaker": v.speaker,
                    "utt_id": utt_id,
                    "path": str(path),
                    "text": text,
                    "voice": v.voice,
                    "lang": v.lang,
                    "num_samples": int(wav.shape[0]),
                }
            )
    log.info("wrote %d utterances of %d speakers under %s", len(records), len(voices), out_dir)
    return records


__all__ = [
    "DEFAULT_VOICES",
    "EXTRA_VOICES",
    "SENTENCES",
    "Voice",
    "check_voice",
    "espeak_available",
    "make_corpus",
    "synthesize_espeak",
]
