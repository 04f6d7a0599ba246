"""68-point face landmarks (dlib's shape predictor) for mouth crops and pose-independent face boxes.

    predictor = LandmarkPredictor()                 # needs `pip install 'unit2av[mouth]'`
    points = predictor(frame_bgr, box)              # (68, 2) float64 from any face box [x1, y1, x2, y2]
    track = fill_landmark_gaps(points_n, max_gap)   # (N, 68, 2); NaN rows = no face
    boxes = av2av_boxes(track)                      # (N, 4) tall boxes like AV2AV's RetinaFace boxes

The model is ``shape_predictor_68_face_landmarks.dat`` (iBUG 300-W markup: jaw 0-16, brows 17-26,
nose 27-35, eyes 36-47, mouth 48-67) as shipped inside the PyPI package ``face-recognition-models``
(the ``mouth`` extra); dlib itself comes with ``dlib-bin``. Nothing is downloaded. The model was
trained on iBUG 300-W, whose licence excludes commercial use (see dlib-models' README).

The predictor was trained on boxes of one particular detector, so a box from another detector
(Haar, RetinaFace, or dlib's HOG box on a turned head) gives worse points. ``LandmarkPredictor``
therefore predicts once from the given box, then ``refine`` more times from a box derived from its
own points (``rect_from_landmarks``), which makes the result nearly independent of the first box.
Detection and tracking of one face are ``unit2av.prepare.faces.detect_video``'s; it then calls
``landmarks_for_track`` on the tracked boxes.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
from pathlib import Path

import numpy as np

from ..errors import fail
from . import track as ft

log = logging.getLogger(__name__)

MOUTH_EXTRA = "mouth"  # pyproject extra that installs the landmark model
MODEL_PACKAGE = "face_recognition_models"  # import name of PyPI's face-recognition-models (model files only)
MODEL_FILE = "models/shape_predictor_68_face_landmarks.dat"  # inside that package (99.7 MB)
NUM_POINTS = 68
MOUTH = slice(48, 68)  # mouth points (outer and inner lip)

# Box handed to the predictor when refining, from the points' centroid (cx, cy) and RMS radius r:
# a square of side RECT_SIDE * r centred at (cx, cy + RECT_DY * r). Chosen on the sample clip among
# sides 2.1-2.6 and offsets -0.3..-0.1 by the agreement of the mouth crops made from the points with
# the provided ones (side 2.2-2.4, offset -0.2..-0.25 all within 0.3 grey levels; 2.6 or -0.1 much worse:
# the predictor then slides off a turned head's mouth).
RECT_DY = -0.22
RECT_SIDE = 2.3
REFINE_PASSES = 2  # 1 pass left frames with errors of 12+ grey levels; 3 passes changed nothing more

# The ``av2av`` face-box style from landmarks (see ``av2av_boxes``): margins in units of the RMS
# radius r, added outside the extent of the 68 points. One margin for both sides, so a mirrored face
# gets the mirrored box. Least-squares fit (per-frame margins averaged) to the 70 provided RetinaFace
# boxes of ../shared/fixtures/av2av_sample/TRajLqEaWhQ_00002 (mean IoU 0.95, min 0.89 on that clip).
AV2AV_SIDE = -0.085  # each side: slightly inside the outermost jaw points
AV2AV_TOP = 0.760  # above the highest point (the brows): the forehead
AV2AV_BOTTOM = -0.030  # the chin point is the bottom edge


def landmark_model_path() -> Path:
    """Path of the 68-point model inside the installed ``face-recognition-models`` package.

    Raises:
        Unit2AVError: the package is not installed (one line naming the extra).
    """
    spec = importlib.util.find_spec(MODEL_PACKAGE)  # never imported: its __init__ needs pkg_resources
    if spec is not None and spec.submodule_search_locations:
        for folder in spec.submodule_search_locations:
            path = Path(folder) / MODEL_FILE
            if path.is_file():
                return path
    raise fail(
        None,
        f"face landmarks (mouth crops, landmark face boxes) need dlib's 68-point model: "
        f"pip install 'unit2av[{MOUTH_EXTRA}]'",
    )


def landmarks_available() -> bool:
    """True when both dlib and the 68-point model are installed."""
    if importlib.util.find_spec("dlib") is None:
        return False
    try:
        landmark_model_path()
    except Exception:  # noqa: BLE001 - not installed
        return False
    return True


@functools.lru_cache(maxsize=2)
def _load_shape_predictor(path: str):
    """dlib's shape predictor from ``path`` (about 2 s for the 100 MB file; loaded once per process)."""
    try:
        import dlib
    except ImportError as e:
        raise fail(None, "face landmarks need dlib: pip install dlib-bin") from e
    try:
        return dlib.shape_predictor(path)
    except RuntimeError as e:
        raise fail(path, f"cannot load the landmark model: {e}") from e


def face_frame(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centroid ``(..., 2)`` and RMS radius ``(...)`` of landmarks ``(..., 68, 2)`` (rotation-invariant size)."""
    points = np.asarray(points, dtype=np.float64)
    centre = points.mean(axis=-2)
    radius = np.sqrt(((points - centre[..., None, :]) ** 2).sum(axis=-1).mean(axis=-1))
    return centre, radius


def rect_from_landmarks(points: np.ndarray) -> np.ndarray:
    """The box ``[x1, y1, x2, y2]`` the predictor is re-run on, from its own points ``(68, 2)``."""
    (cx, cy), r = face_frame(points)
    cy, half = cy + RECT_DY * r, RECT_SIDE * r / 2
    return np.array([cx - half, cy - half, cx + half, cy + half])


class LandmarkPredictor:
    """dlib's 68-point shape predictor; ``__call__(frame_bgr (H, W, 3), box (4,)) -> (68, 2)`` float64.

    Args:
        model: the ``.dat`` file (default: the one in ``face-recognition-models``).
        refine: extra passes from the box derived from the previous pass's points (0: the given box only).
    """

    def __init__(self, model: str | Path | None = None, refine: int = REFINE_PASSES):
        import dlib

        self._dlib = dlib
        self.model = Path(model) if model is not None else landmark_model_path()
        self.predictor = _load_shape_predictor(str(self.model))
        self.refine = refine

    def _predict(self, rgb: np.ndarray, box: np.ndarray) -> np.ndarray:
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        shape = self.predictor(rgb, self._dlib.rectangle(x1, y1, max(x2, x1 + 1), max(y2, y1 + 1)))
        return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)

    def __call__(self, frame: np.ndarray, box: np.ndarray) -> np.ndarray:
        rgb = np.ascontiguousarray(frame[:, :, ::-1])
        points = self._predict(rgb, np.asarray(box, dtype=np.float64).reshape(4))
        for _ in range(self.refine):
            points = self._predict(rgb, rect_from_landmarks(points))
        return points


def landmarks_for_track(
    video, boxes: np.ndarray, predictor: LandmarkPredictor | None = None, progress: bool = True
) -> np.ndarray:
    """Landmarks of one face through a video, started from its box in every frame.

    Args:
        video: the video file (decoded once more, frame by frame).
        boxes: ``(N, 4)`` face boxes, NaN rows for frames without a face (a track, or boxes read
            from a ``.bbox.pkl`` with ``track.from_box_list``).
        predictor: a ``LandmarkPredictor`` (default: a new one).
        progress: show a tqdm progress bar.

    Returns:
        ``(N, 68, 2)`` float64, NaN where ``boxes`` has none.

    Raises:
        Unit2AVError: the video has a different number of frames than ``boxes``.
    """
    from tqdm import tqdm

    from ..io.media import iter_frames

    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    predictor = predictor or LandmarkPredictor()
    out = np.full((len(boxes), NUM_POINTS, 2), np.nan)
    count = 0
    for i, frame in enumerate(
        tqdm(iter_frames(video), total=len(boxes), desc="landmarks", unit="frame", disable=not progress)
    ):
        count += 1
        if i < len(boxes) and not np.isnan(boxes[i]).any():
            out[i] = predictor(frame, boxes[i])
    if count != len(boxes):
        raise fail(video, f"the video has {count} frames but there are {len(boxes)} face boxes")
    return out


def fill_landmark_gaps(points: np.ndarray, max_gap: int) -> np.ndarray:
    """Interpolate runs of up to ``max_gap`` frames without landmarks (``track.fill_gaps`` on ``(N, 136)``).

    Args:
        points: ``(N, 68, 2)`` with NaN rows for frames without a face.
        max_gap: longest run to fill; a run at the start or end repeats its one neighbour.
    """
    points = np.asarray(points, dtype=np.float64)
    return ft.fill_gaps(points.reshape(len(points), -1), max_gap).reshape(points.shape)


def av2av_boxes(points: np.ndarray) -> np.ndarray:
    """Tall ``av2av`` face boxes from landmarks: ``(N, 68, 2)`` -> ``(N, 4)`` (NaN rows pass through).

    The box is the extent of the 68 points grown by ``AV2AV_SIDE`` / ``AV2AV_TOP`` / ``AV2AV_BOTTOM``
    times the points' RMS radius. Extent and radius follow the face itself, so the box keeps its fit
    when the head turns, the picture is mirrored or the video is rescaled (unlike a fixed offset on
    a detector box, whose centre sits elsewhere on a turned face).
    """
    points = np.asarray(points, dtype=np.float64)
    _, r = face_frame(points)
    lo, hi = points.min(axis=-2), points.max(axis=-2)  # (N, 2)
    return np.stack(
        [lo[:, 0] - AV2AV_SIDE * r, lo[:, 1] - AV2AV_TOP * r, hi[:, 0] + AV2AV_SIDE * r, hi[:, 1] + AV2AV_BOTTOM * r],
        axis=1,
    )


__all__ = [
    "LandmarkPredictor",
    "MOUTH",
    "MOUTH_EXTRA",
    "av2av_boxes",
    "face_frame",
    "fill_landmark_gaps",
    "landmark_model_path",
    "landmarks_available",
    "landmarks_for_track",
    "rect_from_landmarks",
]
