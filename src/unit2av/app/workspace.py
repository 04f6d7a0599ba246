"""What the app may touch: files under ``--root``, model containers under ``--models``, its own work folder.

    ws = Workspace(root="clips", models="models")
    video = ws.existing("talk/a.mp4", "video")      # refused unless it lies under clips/ (symlinks resolved)
    container, langs = ws.model("bundled demo models")    # an AV2AV container and its languages

Nothing here keeps per-user state: a ``Workspace`` is shared by every browser tab and holds only
the folders and facts about model files (their languages), which are the same for everyone.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
from pathlib import Path

from ..errors import fail

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v")  # listed as videos under --root
BOX_SUFFIXES = (".pkl",)  # listed as box files
MODEL_SUFFIXES = (".pt", ".pth", ".ckpt")  # listed as model containers under --models
MAX_LISTED = 2000  # files offered in one dropdown (a huge --root is cut short, with a warning)
BUNDLED = "bundled demo models"  # the model choice that needs no --models folder
BUNDLED_LANG = "demo"  # the language key of the bundled vocoder in the container the app packs


class Workspace:
    """The folders of one running app.

    Args:
        root: the folder whose files the page may open and save (``--root``).
        models: a folder of AV2AV model containers (``--models``), or ``None``.
        work: where renders and per-tab files go (``None``: a new temporary folder, removed by ``close``).
    """

    def __init__(
        self, root: str | os.PathLike, models: str | os.PathLike | None = None, work: str | os.PathLike | None = None
    ):
        self.root = Path(root).expanduser().resolve()
        if not self.root.is_dir():
            raise fail(root, "--root must be an existing folder")
        self.models = Path(models).expanduser().resolve() if models else None
        if self.models is not None and not self.models.is_dir():
            raise fail(models, "--models must be an existing folder of model containers")
        self._own_work = work is None
        self.work = Path(tempfile.mkdtemp(prefix="unit2av-app-")) if work is None else Path(work).resolve()
        self.work.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._langs: dict[tuple[str, float], list[str]] = {}

    # ------------------------------------------------------------------ paths under --root
    def resolve(self, text: str | os.PathLike | None, what: str = "file") -> Path:
        """``text`` (relative to the root, or absolute) as a resolved path that lies under the root.

        Raises:
            Unit2AVError: nothing given, or a path outside the root (``..``, absolute, or a symlink out).
        """
        text = "" if text is None else str(text).strip()
        if not text:
            raise fail(None, f"no {what} given: pick one under {self.root} or upload it")
        path = Path(text).expanduser()
        path = (path if path.is_absolute() else self.root / path).resolve()
        if not path.is_relative_to(self.root):
            raise fail(text, f"is outside the --root folder {self.root}; the app opens and saves only files under it")
        return path

    def existing(self, text: str | os.PathLike | None, what: str = "file") -> Path:
        """``resolve`` and check that the file exists."""
        path = self.resolve(text, what)
        if not path.is_file():
            raise fail(path, f"{what} not found")
        return path

    def relative(self, path: str | os.PathLike) -> str:
        """``path`` relative to the root when it lies under it, else as given."""
        p = Path(path)
        return p.relative_to(self.root).as_posix() if p.is_relative_to(self.root) else str(p)

    def list_files(self, suffixes: tuple[str, ...]) -> list[str]:
        """Files under the root with one of ``suffixes``, as sorted root-relative paths (hidden folders skipped)."""
        found: list[str] = []
        for folder, dirs, files in os.walk(self.root):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(files):
                if name.lower().endswith(suffixes) and not name.startswith("."):
                    found.append(self.relative(Path(folder) / name))
                    if len(found) >= MAX_LISTED:
                        log.warning("%s: more than %d files; the list is cut short", self.root, MAX_LISTED)
                        return found
        return found

    def checkpoint(self, text: str | os.PathLike | None, what: str = "checkpoint") -> Path:
        """A model file (mAV-HuBERT, UTUT, ``dict.txt``) named relative to ``--models`` (looked up first) or
        the root, or absolute under either; symlinks resolved.

        Raises:
            Unit2AVError: nothing given, a path outside both folders, or no such file.
        """
        name = "" if text is None else str(text).strip()
        if self.models is not None and name:
            path = Path(name).expanduser()
            path = (path if path.is_absolute() else self.models / path).resolve()
            if path.is_relative_to(self.models) and path.is_file():
                return path
            path = Path(name).expanduser()
            path = (path if path.is_absolute() else self.root / path).resolve()
            if not path.is_relative_to(self.root):
                raise fail(
                    name,
                    f"is outside the --root folder {self.root} and the --models folder {self.models}; "
                    "the app reads model files only under them",
                )
        return self.existing(name, what)

    def checkpoint_choices(self) -> list[str]:
        """Model files (``MODEL_SUFFIXES``) offered for the dub's checkpoints: under ``--models``, then the root."""
        names = self.model_choices()[1:]
        return names + [n for n in self.list_files(MODEL_SUFFIXES) if n not in names]

    # ------------------------------------------------------------------ models
    def model_choices(self) -> list[str]:
        """``BUNDLED`` first, then the containers under ``--models`` (relative names)."""
        names = [BUNDLED]
        if self.models is not None:
            names += sorted(
                p.relative_to(self.models).as_posix()
                for p in self.models.rglob("*")
                if p.is_file() and p.suffix.lower() in MODEL_SUFFIXES
            )
        return names

    def model(self, choice: str) -> tuple[Path, list[str]]:
        """``(container, languages)`` of a model choice (``render`` finds the vocoder config: stored in the
        container, or ``config.json`` beside it).

        The bundled demo models are packed once per app into an AV2AV container in the work
        folder (``unit2av pack``, which stores the vocoder's config inside), so that renders in the
        app and ``unit2av render`` read the very same file.

        Raises:
            Unit2AVError: a choice that is not offered, or a container that cannot be read.
        """
        if not choice or choice == BUNDLED:
            return self._bundled(), [BUNDLED_LANG]
        if self.models is None:
            raise fail(choice, "no --models folder was given; only the bundled demo models are available")
        path = (self.models / choice).resolve()
        if not path.is_relative_to(self.models) or not path.is_file() or path.suffix.lower() not in MODEL_SUFFIXES:
            raise fail(choice, f"is not a model container under {self.models}")
        return path, self._languages(path)

    def _languages(self, path: Path) -> list[str]:
        from ..io.checkpoints import container_languages, open_container

        key = (str(path), path.stat().st_mtime)
        with self._lock:
            if key not in self._langs:
                container = open_container(path)
                langs = container_languages(container)
                if not langs:
                    raise fail(path, "has no vocoders under 'audio': not an AV2AV container")
                self._langs[key] = langs
            return self._langs[key]

    def _bundled(self) -> Path:
        from ..demo.video import asset
        from ..pipeline.pack import pack

        container = self.work / "bundled" / "demo_av2av.pt"
        with self._lock:
            if not container.is_file():
                pack({BUNDLED_LANG: asset("vocoder.pt")}, asset("face_renderer.pt"), container)  # config kept inside
                log.info("packed the bundled demo models into %s", container)
        return container

    # ------------------------------------------------------------------ per-tab folders
    def session_folder(self) -> Path:
        """A new folder for one browser tab's files (renders, downloads)."""
        sessions = self.work / "sessions"
        sessions.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix="tab-", dir=sessions))

    def close(self) -> None:
        """Remove the work folder when the workspace made it."""
        if self._own_work:
            shutil.rmtree(self.work, ignore_errors=True)


__all__ = ["BUNDLED", "BUNDLED_LANG", "BOX_SUFFIXES", "MODEL_SUFFIXES", "VIDEO_SUFFIXES", "Workspace"]
