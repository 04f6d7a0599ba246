"""Beam search as fairseq's ``SequenceGenerator`` (with ``search.BeamSearch``) runs it for UTUT.

Per step, for every live beam row: log-softmax over the vocabulary (float32), then ``<pad>`` := -inf,
``<unk>`` -= unkpen, at step >= max_len every entry but eos := -inf, at step < min_len eos := -inf,
then the suppressed tokens := -inf (no renormalisation). Candidates are the top 2*beam of
(cumulative score + log-prob) over beam x vocab (step 0: the first row only). eos candidates ranked
within the first ``beam`` are finalised (score = cumulative / length**lenpen, length counting the
eos); the first ``beam`` non-eos candidates continue. A sentence ends when it has ``beam`` finished
hypotheses or reaches its max_len. Hypotheses start with eos (the target-language token) and their
tokens exclude that start token.

Differences from fairseq, on purpose: max_len is per sentence (from each sentence's own length, as
AV2AV translates one sentence at a time), so a batch gives what each sentence gives alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .model import BartModel, DecoderCache
from .vocab import PAD, UNK


@dataclass
class Hypothesis:
    """One finished hypothesis.

    Attributes:
        tokens: (L,) int64 vocabulary indices, ending with eos (the target-language token).
        score: cumulative log-prob / L**lenpen.
        positional_scores: (L,) float32 per-token log-probs (the last is eos's).
        text: the unit string as the reference prints it (filled in by the translator).
        units: the unit values in ``text`` (filled in by the translator).
    """

    tokens: torch.Tensor
    score: float
    positional_scores: torch.Tensor
    text: str = ""
    units: list[int] | None = None


@dataclass
class SearchSettings:
    """Decoding settings: the checkpoint's ``cfg.generation`` (these defaults when absent), overridable per call."""

    beam: int = 5
    max_len_a: float = 0.0
    max_len_b: int = 200
    min_len: int = 1
    lenpen: float = 1.0
    unkpen: float = 0.0


def _mask_lprobs(
    lp: torch.Tensor, step: int, row_max_len: torch.Tensor, eos: int, suppressed: torch.Tensor, s: SearchSettings
) -> None:
    """fairseq's masking, in place: lp (N, V) float32; row_max_len (N,) int64."""
    torch.nan_to_num_(lp, nan=-torch.inf, posinf=torch.inf, neginf=-torch.inf)
    lp[:, PAD] = -torch.inf
    lp[:, UNK] -= s.unkpen
    at_max = row_max_len <= step
    if bool(at_max.any()):
        keep = lp[at_max, eos]
        lp[at_max] = -torch.inf
        lp[at_max, eos] = keep
    if step < s.min_len:
        lp[:, eos] = -torch.inf
    lp[:, suppressed] = -torch.inf


def _candidates(lp: torch.Tensor, scores: torch.Tensor, step: int, bsz: int, beam: int):
    """fairseq's ``BeamSearch.step``: the top 2*beam of cumulative + step log-probs over beam x vocab.

    Args:
        lp: (B*beam, V) masked log-probs. scores: (B*beam, steps+1) cumulative scores.

    Returns:
        cand_scores, cand_beams, cand_tokens: each (B, 2*beam), best first.
    """
    vocab = lp.shape[1]
    lp = lp.view(bsz, beam, vocab)
    lp = lp[:, 0] if step == 0 else lp + scores[:, step - 1].view(bsz, beam, 1)  # step 0: the first beam only
    lp = lp.reshape(bsz, -1)
    cand_scores, idx = torch.topk(lp, k=min(2 * beam, lp.shape[1] - 1))
    return cand_scores, idx // vocab, idx % vocab


def _finalize(step, sent_ids, rows, cand_scores, tokens, scores, finalized, beam, lenpen, eos):
    """Append the finished hypotheses ending at this step (rows: old row indices, cand_scores: their scores)."""
    seq = tokens[rows, 1 : step + 2].clone()
    seq[:, step] = eos
    cum = scores[rows, : step + 1].clone()
    cum[:, step] = cand_scores
    pos = cum.clone()
    pos[:, 1:] = cum[:, 1:] - cum[:, :-1]
    norm = cand_scores / (step + 1) ** lenpen
    for i, r in enumerate(rows.tolist()):
        out = finalized[sent_ids[r // beam]]
        if len(out) < beam:
            out.append(Hypothesis(seq[i], float(norm[i]), pos[i]))


@dataclass
class _Beams:
    """The live state of a beam search: rows ``n = b * beam + k`` of the active sentences ``b``."""

    tokens: torch.Tensor  # (B*beam, steps+2) int64: eos, then the tokens chosen so far
    scores: torch.Tensor  # (B*beam, steps+1) float32 cumulative scores
    ignore: torch.Tensor  # (B, beam) bool: ranks taken by finished candidates
    sent_ids: list[int]  # active sentence -> original index
    max_len: torch.Tensor  # (B,) int64 per-sentence length limits
    max_list: list[int]
    enc: torch.Tensor  # (B, S, E) encoder output
    pad_mask: torch.Tensor  # (B, S) bool
    cross_mask: torch.Tensor | None  # (B, 1, 1, S)
    cross_kv: list | None  # per layer (k, v), each (B, H, S, Dh) (with the cache)

    def keep(self, kept: list[int]) -> torch.Tensor:
        """Drop the finished sentences (keep the active ones at indices ``kept``); returns ``kept`` as a tensor."""
        keep = torch.tensor(kept, dtype=torch.long, device=self.enc.device)
        self.sent_ids, self.max_list = [self.sent_ids[b] for b in kept], [self.max_list[b] for b in kept]
        self.ignore, self.max_len, self.enc, self.pad_mask = (
            t[keep] for t in (self.ignore, self.max_len, self.enc, self.pad_mask)
        )
        self.cross_mask = self.cross_mask[keep] if self.cross_mask is not None else None
        if self.cross_kv is not None:
            self.cross_kv = [(k[keep], v[keep]) for k, v in self.cross_kv]
        return keep


def _start(model: BartModel, src_tokens, src_lengths, eos: int, s: SearchSettings, use_cache: bool):
    """Encode the sources and set up the search: returns (``_Beams``, ``DecoderCache`` or None, steps)."""
    dev, bsz = src_tokens.device, src_tokens.shape[0]
    limit = model.max_decoder_positions - 1
    max_len = torch.clamp((s.max_len_a * src_lengths.double() + s.max_len_b).long(), max=limit).to(dev)
    max_list = max_len.tolist()
    steps = max(max_list)
    pad_mask = torch.arange(src_tokens.shape[1], device=dev)[None] >= src_lengths.to(dev)[:, None]
    enc = model.encoder(src_tokens, pad_mask)  # (B, S, E)
    cross_mask = (~pad_mask)[:, None, None, :] if bool(pad_mask.any()) else None
    tokens = torch.full((bsz * s.beam, steps + 2), PAD, dtype=torch.long, device=dev)
    tokens[:, 0] = eos
    beams = _Beams(
        tokens=tokens,
        scores=torch.zeros((bsz * s.beam, steps + 1), dtype=torch.float32, device=dev),
        ignore=torch.zeros((bsz, s.beam), dtype=torch.bool, device=dev),
        sent_ids=list(range(bsz)),
        max_len=max_len,
        max_list=max_list,
        enc=enc,
        pad_mask=pad_mask,
        cross_mask=cross_mask,
        cross_kv=model.decoder.cross_keys_values(enc) if use_cache else None,
    )
    cache = DecoderCache(model, bsz * s.beam, steps + 1, dev) if use_cache else None
    return beams, cache, steps


@torch.inference_mode()
def beam_search(
    model: BartModel,
    src_tokens: torch.Tensor,
    src_lengths: torch.Tensor,
    eos: int,
    suppressed: list[int],
    settings: SearchSettings,
    use_cache: bool = True,
) -> list[list[Hypothesis]]:
    """Translate a batch of encoded sources.

    Args:
        model: the BART model (eval).
        src_tokens: (B, S) int64, right-padded with ``<pad>``.
        src_lengths: (B,) each source's length (incl. ``<s>``, ``</s>``, ``[src]``).
        eos: the target-language token (start token and end of every hypothesis).
        suppressed: indices never generated.
        settings: beam, length limit (max_len_a * S + max_len_b), min_len, lenpen, unkpen.
        use_cache: incremental decoding with a key/value cache (False: the whole prefix each step).

    Returns:
        Per sentence, ``beam`` hypotheses sorted by score, best first.
    """
    s, dev, beam = settings, src_tokens.device, settings.beam
    st, cache, steps = _start(model, src_tokens, src_lengths, eos, s, use_cache)
    bsz = src_tokens.shape[0]
    supp = torch.tensor(suppressed, dtype=torch.long, device=dev)
    finalized: list[list[Hypothesis]] = [[] for _ in range(bsz)]
    for step in range(steps + 1):
        if use_cache:
            lp = model.decoder(st.tokens[:, step : step + 1], st.cross_kv, st.cross_mask, cache, step)
        else:
            kv = model.decoder.cross_keys_values(st.enc)
            lp = model.decoder(st.tokens[:, : step + 1], kv, st.cross_mask, None, step)
        _mask_lprobs(lp, step, st.max_len.repeat_interleave(beam), eos, supp, s)
        cand_scores, cand_beams, cand_tokens = _candidates(lp, st.scores, step, bsz, beam)
        cand_rows = cand_beams + (torch.arange(bsz, device=dev) * beam)[:, None]  # rows in the current numbering
        eos_mask = (cand_tokens == eos) & (cand_scores != -torch.inf)
        eos_mask[:, :beam] &= ~st.ignore
        fin = eos_mask[:, :beam]
        if bool(fin.any()):
            rows, fin_scores = cand_rows[:, :beam][fin], cand_scores[:, :beam][fin]
            _finalize(step, st.sent_ids, rows, fin_scores, st.tokens, st.scores, finalized, beam, s.lenpen, eos)
        seen = fin.any(dim=1).tolist()
        done = [seen[b] and (len(finalized[st.sent_ids[b]]) == beam or step == st.max_list[b]) for b in range(bsz)]
        if all(done):
            break
        kept = [b for b in range(bsz) if not done[b]]
        if len(kept) < bsz:
            keep = st.keep(kept)
            eos_mask, cand_rows, cand_scores, cand_tokens = (
                t[keep] for t in (eos_mask, cand_rows, cand_scores, cand_tokens)
            )
            bsz = len(kept)
        rows = _advance(st, step, eos_mask, cand_rows, cand_scores, cand_tokens, beam)
        if cache is not None:
            cache.reorder(rows, step + 1)
    return [sorted(h, key=lambda x: -x.score) for h in finalized]


def _advance(st: _Beams, step: int, eos_mask, cand_rows, cand_scores, cand_tokens, beam: int) -> torch.Tensor:
    """Choose the next rows: fairseq's rule (eos candidates and ignored ranks sort after all others,
    ranks kept otherwise). Updates ``st`` in place; returns the old row index of each new row."""
    cand_size = 2 * beam
    eos_mask[:, :beam] |= st.ignore
    active = eos_mask.long() * cand_size + torch.arange(eos_mask.shape[1], device=eos_mask.device)
    new_ignore, active_hypos = torch.topk(active, k=beam, dim=1, largest=False)
    st.ignore = new_ignore >= cand_size
    rows = cand_rows.gather(1, active_hypos).view(-1)
    st.tokens = st.tokens[rows]
    st.tokens[:, step + 1] = cand_tokens.gather(1, active_hypos).view(-1)
    st.scores = st.scores[rows]
    st.scores[:, step] = cand_scores.gather(1, active_hypos).view(-1)
    return rows
