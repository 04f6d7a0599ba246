"""Audio quality without a reference: DNSMOS P.835 (SIG, BAK, OVRL) from ``speechmos``'s models.

``speechmos`` ships Microsoft's DNSMOS ONNX models inside its wheel. Its own ``dnsmos`` module
imports librosa and requests for the P.808 figure; SIG/BAK/OVRL need neither, so the
``sig_bak_ovr.onnx`` model is found in the installed package (without importing it) and run
with onnxruntime here. The procedure is DNSMOS's: 16 kHz audio shorter than 9.01 s is repeated
until it is that long; 9.01 s windows every second are scored; each raw score is mapped through
DNSMOS's published calibration polynomial; the window scores are averaged.
"""

from __future__ import annotations

import numpy as np

from .extras import MissingExtra, package_dir, require

SAMPLE_RATE = 16000  # the models' input rate
WINDOW_S = 9.01  # seconds of audio per model input
HOP_S = 1.0  # seconds between windows
MODEL = ("dnsmos_models", "sig_bak_ovr.onnx")  # path inside the speechmos package
# DNSMOS's calibration polynomials (highest power first) from raw model outputs to MOS.
CALIBRATION = {
    "sig": (-0.08397278, 1.22083953, 0.0052439),
    "bak": (-0.13166888, 1.60915514, -0.39604546),
    "ovrl": (-0.06766283, 1.11546468, 0.04602535),
}


class DNSMOS:
    """DNSMOS P.835 scorer.

    Args:
        threads: onnxruntime intra-op threads (0: its default).

    Raises:
        MissingExtra: ``speechmos`` or ``onnxruntime`` is not installed.
    """

    def __init__(self, threads: int = 0):
        ort = require("onnxruntime", "quality", "DNSMOS")
        path = package_dir("speechmos", "quality", "DNSMOS").joinpath(*MODEL)
        if not path.is_file():
            raise MissingExtra(
                f"DNSMOS model {'/'.join(MODEL)} not in the installed speechmos: pip install 'unit2av[quality]'"
            )
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(threads)
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name

    def __call__(self, wav: np.ndarray) -> dict:
        """(T,) float 16 kHz speech in [-1, 1] -> ``{"dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl"}``."""
        audio = np.clip(np.asarray(wav, np.float32).reshape(-1), -1.0, 1.0)
        if audio.size == 0:
            return {f"dnsmos_{k}": None for k in CALIBRATION}
        need = int(WINDOW_S * SAMPLE_RATE)
        while len(audio) < need:
            audio = np.concatenate([audio, audio])
        hops = int(np.floor(len(audio) / SAMPLE_RATE) - WINDOW_S) + 1  # as DNSMOS counts them
        starts = [int(i * HOP_S * SAMPLE_RATE) for i in range(hops)]
        batch = np.stack([audio[s : s + need] for s in starts if s + need <= len(audio)])  # (N, 144160)
        raw = self.session.run(None, {self.input: batch})[0]  # (N, 3): sig, bak, ovrl
        return {f"dnsmos_{k}": float(np.mean(np.polyval(CALIBRATION[k], raw[:, i]))) for i, k in enumerate(CALIBRATION)}


__all__ = ["CALIBRATION", "DNSMOS"]
