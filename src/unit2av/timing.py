"""The timing contract every stage shares: 16 kHz speech, 50 Hz units, 25 fps video.

AV2AV's models were trained on this grid and nothing else: mAV-HuBERT emits two units per video
frame, the vocoders voice one unit per ``HOP_SAMPLES`` samples, and the face renderer draws
``FRAMES_PER_WINDOW`` frames from ``UNITS_PER_WINDOW`` units. Every module takes these numbers
from here; a model whose own rate differs is refused where it is loaded or used
(:func:`check_unit_rate`).
"""

from __future__ import annotations

from .errors import fail

SAMPLE_RATE = 16_000  # Hz: speech everywhere in the pipeline
UNIT_RATE = 50  # units per second (mAV-HuBERT / HuBERT frame rate)
VIDEO_FPS = 25  # frames per second of the video the renderer and mAV-HuBERT were trained on
HOP_SAMPLES = SAMPLE_RATE // UNIT_RATE  # 320 samples of speech per unit
UNITS_PER_FRAME = UNIT_RATE // VIDEO_FPS  # 2 units per video frame
FRAMES_PER_WINDOW = 10  # video frames the face renderer draws per window (0.4 s)
UNITS_PER_WINDOW = FRAMES_PER_WINDOW * UNITS_PER_FRAME  # 20 units per window
FACE_SIZE = 96  # pixels: the renderer's face crop and AV2AV's mouth crops (.lip.mp4)


def check_unit_rate(hop_samples: int, sample_rate: int, source=None) -> None:
    """Refuse a vocoder whose units do not run at ``UNIT_RATE`` (lips would drift out of sync).

    Args:
        hop_samples: the vocoder's samples per unit (``code_hop_size``).
        sample_rate: its output sample rate.
        source: the file the vocoder came from, named in the error.
    """
    rate = sample_rate / hop_samples
    if abs(rate - UNIT_RATE) > 1e-9:
        raise fail(
            source,
            f"vocoder voices {rate:g} units/s ({sample_rate} Hz / hop {hop_samples}); "
            f"the face renderer needs {UNIT_RATE} units/s = {UNITS_PER_FRAME} per {VIDEO_FPS} fps frame",
        )
