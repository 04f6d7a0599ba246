"""Face renderer checkpoints: the one loader, and what the original tools can load.

Every place that needs a renderer from a file (``render``, ``export``, the demo, ``train-face
--init``) goes through :func:`load_face_renderer`, with one rule: the renderer is built at the
width and with the unit count its weights have (the shape of ``unit_embed.weight``), and every
other key must then fit exactly. A unit the table has no row for is refused where units are read,
never mapped to another unit's row.

Containers: AV2AV's ``{"audio": {lang: sd}, "video": sd}``, a ``train-face`` ``f_`` file (the same
layout without vocoders), or a bare renderer state dict.
"""

from __future__ import annotations

import os

import torch

from ..devices import resolve_device
from ..errors import fail
from ..io.checkpoints import face_state, load_state_checked, open_container
from .model import EMBED_DIM, NUM_UNITS, FaceRenderer

TABLE_KEY = "unit_embed.weight"  # (num_embeddings, width): the unit table fixes the renderer's size


def renderer_size(state: dict[str, torch.Tensor], source=None) -> tuple[int, int]:
    """``(num_embeddings, width)`` of a renderer state dict, read off its unit table.

    Raises:
        Unit2AVError: no 2-D ``unit_embed.weight`` (not a face renderer).
    """
    table = state.get(TABLE_KEY)
    if not isinstance(table, torch.Tensor) or table.dim() != 2 or min(table.shape) < 1:
        raise fail(source, f"face renderer weights have no 2-D '{TABLE_KEY}' (not an AV2AV FaceRenderer)")
    return int(table.shape[0]), int(table.shape[1])


def load_face_renderer(
    checkpoint: str | os.PathLike | dict, device: str | torch.device = "cpu", source=None
) -> FaceRenderer:
    """Build the face renderer a checkpoint holds, in eval mode.

    Args:
        checkpoint: a path, or a container already opened (``open_container``): AV2AV container,
            ``f_`` file or bare renderer state dict.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ...
        source: the file named in errors (default: ``checkpoint`` when it is a path).

    Raises:
        Unit2AVError: unreadable file, no renderer in it, or weights that do not fit the layout.
    """
    if isinstance(checkpoint, dict):
        container = checkpoint
    else:
        source = checkpoint if source is None else source
        container = open_container(checkpoint)
    state = face_state(container, source)
    num_embeddings, width = renderer_size(state, source)
    model = FaceRenderer(num_embeddings, width)
    load_state_checked(model, state, source)
    return model.to(resolve_device(device)).eval()


def av2av_incompatibility(state: dict[str, torch.Tensor]) -> str | None:
    """Why AV2AV's own code could not load this renderer (it builds a 512-wide, 1000-unit one), or None."""
    num_embeddings, width = renderer_size(state)
    problems = []
    if width != EMBED_DIM:
        problems.append(f"width {width} (AV2AV builds {EMBED_DIM})")
    if num_embeddings != NUM_UNITS:
        problems.append(f"{num_embeddings} units (AV2AV builds {NUM_UNITS})")
    return ", ".join(problems) or None


__all__ = ["av2av_incompatibility", "load_face_renderer", "renderer_size"]
