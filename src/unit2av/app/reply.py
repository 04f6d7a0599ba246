"""What every event handler of the page shares: errors as the status line, and the tab's open video."""

from __future__ import annotations

from ..errors import Unit2AVError
from .session import Session


class Reply(dict):
    """Outputs of one event as ``{component: value}``; a ``Unit2AVError`` inside ``with`` becomes the status line.

    Args:
        status: the status component (gets ``error: <the CLI's one line>``; the other outputs are left as they were).
    """

    def __init__(self, status):
        super().__init__()
        self.status = status

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None and issubclass(exc_type, Unit2AVError):
            self.clear()
            self[self.status] = f"error: {exc}"
            return True
        return False


def need_session(s: Session | None) -> Session:
    """The tab's session, or a one-line error asking to open a video."""
    if not isinstance(s, Session):
        raise Unit2AVError("no video open: pick one under --root (or upload one) and press Open")
    return s


def dubbed_outputs(c, s: Session, out) -> dict:
    """The result players' values after a render or a translate-and-dub: ``out`` has ``video``,
    ``preview`` (or None), ``spectrogram`` and ``command``; ``c`` is the page's components."""
    return {
        c.state: s,
        c.dubbed: str(out.video),
        c.cmp_orig: str(s.playable()),
        c.preview: str(out.preview) if out.preview else None,
        c.spectrogram: str(out.spectrogram),
        c.command: out.command,
    }


__all__ = ["Reply", "dubbed_outputs", "need_session"]
