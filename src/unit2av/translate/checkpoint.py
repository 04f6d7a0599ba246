"""A UTUT (fairseq BART/mBART, task ``utut_pretraining``) checkpoint -> ``BartModel`` + vocabulary facts.

The reader is ``unit2av.io.fairseq`` (restricted unpickler); this module checks that the file is a
BART-style translation model, builds ``BartConfig`` from ``cfg.model`` (sizes cross-checked against
the weights) and loads the state dict strictly, key for key (``encoder.version``/``decoder.version``
may be present or absent; the tied output projection may be absent in old files). fp16-stored
weights are loaded into float32 parameters.
"""

from __future__ import annotations

import logging
from dataclasses import fields

import torch

from ..activations import ACTIVATIONS
from ..errors import fail
from ..io.fairseq import FairseqCheckpoint, load_fairseq_checkpoint
from .model import BartConfig, BartModel
from .search import SearchSettings

log = logging.getLogger(__name__)

WHAT = "UTUT checkpoint"
_OPTIONAL = {"encoder.version", "decoder.version"}


def _bool(m: dict, key: str, default: bool) -> bool:
    v = m.get(key)
    return default if v is None else bool(v)


def _describe(ck: FairseqCheckpoint) -> str:
    model, task = ck.cfg.get("model") or {}, ck.cfg.get("task") or {}
    return (
        f"a '{model.get('_name') or model.get('arch') or 'unknown'}' model for task "
        f"'{task.get('_name') or task.get('task') or 'unknown'}'"
    )


def bart_config(ck: FairseqCheckpoint) -> BartConfig:
    """``BartConfig`` from ``cfg.model``; layer counts and widths come from the weights themselves.

    Raises:
        Unit2AVError: not an encoder-decoder transformer with BART's keys, or an unsupported option.
    """
    sd, m = ck.model, ck.cfg.get("model") or {}
    needed = (
        "encoder.embed_tokens.weight",
        "decoder.embed_tokens.weight",
        "encoder.embed_positions.weight",
        "decoder.embed_positions.weight",
    )
    if not all(k in sd for k in needed) or not isinstance(m, dict):
        raise fail(
            ck.path,
            f"not a UTUT/BART translation checkpoint: it is {_describe(ck)} "
            f"(state dict keys such as {', '.join(list(sd)[:3])})",
        )
    for key, bad in (
        ("encoder_learned_pos", False),
        ("decoder_learned_pos", False),
        ("no_token_positional_embeddings", True),
        ("adaptive_softmax_cutoff", "any"),
        ("cross_self_attention", True),
        ("adaptive_input", True),
    ):
        v = m.get(key)
        if v is not None and (v == bad or (bad == "any" and v)):
            raise fail(ck.path, f"unsupported BART option {key}={v} ({_describe(ck)})")

    def count(prefix: str) -> int:
        return len({k.split(".")[2] for k in sd if k.startswith(prefix + ".layers.")})

    enc_d, dec_d = sd["encoder.embed_tokens.weight"].shape[1], sd["decoder.embed_tokens.weight"].shape[1]
    cfg = BartConfig(
        vocab_size=sd["encoder.embed_tokens.weight"].shape[0],
        encoder_layers=count("encoder"),
        decoder_layers=count("decoder"),
        encoder_embed_dim=enc_d,
        decoder_embed_dim=dec_d,
        encoder_ffn_embed_dim=sd["encoder.layers.0.fc1.weight"].shape[0] if count("encoder") else 4 * enc_d,
        decoder_ffn_embed_dim=sd["decoder.layers.0.fc1.weight"].shape[0] if count("decoder") else 4 * dec_d,
        encoder_attention_heads=int(m.get("encoder_attention_heads") or max(1, enc_d // 64)),
        decoder_attention_heads=int(m.get("decoder_attention_heads") or max(1, dec_d // 64)),
        encoder_normalize_before="encoder.layer_norm.weight" in sd,
        decoder_normalize_before="decoder.layer_norm.weight" in sd,
        layernorm_embedding="encoder.layernorm_embedding.weight" in sd,
        scale_embedding=not _bool(m, "no_scale_embedding", False),
        activation_fn=str(m.get("activation_fn") or "gelu"),
        max_source_positions=sd["encoder.embed_positions.weight"].shape[0] - 2,
        max_target_positions=sd["decoder.embed_positions.weight"].shape[0] - 2,
        share_all_embeddings=_bool(m, "share_all_embeddings", True),
        share_decoder_input_output_embed=_bool(m, "share_decoder_input_output_embed", True),
    )
    if cfg.activation_fn not in ACTIVATIONS:
        raise fail(ck.path, f"unsupported activation_fn '{cfg.activation_fn}' (known: {', '.join(ACTIVATIONS)})")
    for side in ("encoder", "decoder"):
        d, h = getattr(cfg, f"{side}_embed_dim"), getattr(cfg, f"{side}_attention_heads")
        if d % h:
            raise fail(ck.path, f"{side} width {d} is not divisible by its {h} attention heads")
        nb, cb = getattr(cfg, f"{side}_normalize_before"), m.get(f"{side}_normalize_before")
        if cb is not None and bool(cb) != nb:
            raise fail(
                ck.path,
                f"cfg.model.{side}_normalize_before={cb} but the weights {'have' if nb else 'lack'} {side}.layer_norm",
            )
    return cfg


def load_state(model: BartModel, sd: dict[str, torch.Tensor], path) -> None:
    """Copy ``sd`` into ``model`` strictly: same keys (versions optional), same shapes.

    Raises:
        Unit2AVError: missing, unexpected or mis-shaped keys (the first few named).
    """
    own = model.state_dict()
    given = dict(sd)
    if model.cfg.share_decoder_input_output_embed and "decoder.output_projection.weight" not in given:
        given["decoder.output_projection.weight"] = given["decoder.embed_tokens.weight"]
    missing = [k for k in own if k not in given and k not in _OPTIONAL]
    unexpected = [k for k in given if k not in own]
    if missing or unexpected:
        raise fail(path, f"not a UTUT/BART state dict: missing keys {missing[:4]}, unexpected keys {unexpected[:4]}")
    wrong = [
        f"{k} {tuple(given[k].shape)} vs {tuple(v.shape)}"
        for k, v in own.items()
        if k in given and given[k].shape != v.shape
    ]
    if wrong:
        raise fail(path, f"UTUT state dict shapes do not match its config: {'; '.join(wrong[:3])}")
    for k in _OPTIONAL - set(given):
        given[k] = own[k]
    with torch.no_grad():
        for k, v in own.items():
            v.copy_(given[k].to(v.dtype))


def load_utut(path, what: str = WHAT) -> tuple[BartModel, FairseqCheckpoint, SearchSettings]:
    """Read a UTUT checkpoint: the model (float32, eval mode, CPU), the raw checkpoint and its generation settings.

    Raises:
        Unit2AVError: a refused/unreadable file, or not a UTUT/BART checkpoint (saying what it is).
    """
    ck = load_fairseq_checkpoint(path, what)
    cfg = bart_config(ck)
    model = BartModel(cfg)
    load_state(model, ck.model, ck.path)
    dtypes = {v.dtype for v in ck.model.values() if v.is_floating_point()}
    if torch.float16 in dtypes:
        log.info("%s: fp16 weights, computing in float32", ck.path)
    g = ck.cfg.get("generation") or {}
    gen = SearchSettings(
        **{f.name: type(f.default)(g[f.name]) for f in fields(SearchSettings) if g.get(f.name) is not None}
    )
    return model.eval(), ck, gen
