"""UTUT translation against the fixture's reference numbers (fairseq not installed), the vocabulary
rule, fp16 checkpoints, the key/value cache, batches, the command and its bad-input errors."""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import SHARED

from unit2av import load_translator
from unit2av.cli import main as cli_main
from unit2av.errors import Unit2AVError
from unit2av.io.fairseq import load_fairseq_checkpoint

UTUT = SHARED / "fixtures" / "utut"
CASES = json.loads((UTUT / "cases.json").read_text())
EXPECTED = dict(np.load(UTUT / "expected.npz"))


def exp(case: str, field: str):
    return EXPECTED[f"{case}__{field}"]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """The tiny model's ops are too small to share between threads (and the cores are shared)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def ckpt_dir(tmp_path_factory):
    """utut_tiny.pt written by the fixture's own materialise.py (no dict.txt beside it)."""
    out = tmp_path_factory.mktemp("utut")
    subprocess.run([sys.executable, str(UTUT / "materialise.py"), str(out)], check=True, capture_output=True)
    return out


@pytest.fixture(scope="module")
def tr(ckpt_dir):
    return load_translator(ckpt_dir / "utut_tiny.pt", dict_path=UTUT / "dict.txt", device="cpu")


def _check_nbest(hyps, case, score_tol=1e-4, pos_tol=2e-4):
    lengths = exp(case, "nbest_lengths")
    assert [len(h.tokens) for h in hyps] == lengths.tolist()
    for i, h in enumerate(hyps):
        assert h.tokens.dtype == torch.int64
        assert h.tokens.tolist() == exp(case, "nbest_tokens")[i][: lengths[i]].tolist()
        assert abs(h.score - float(exp(case, "nbest_scores")[i])) <= score_tol
        ref_pos = exp(case, "nbest_positional_scores")[i][: lengths[i]]
        assert np.abs(h.positional_scores.numpy() - ref_pos).max() <= pos_tol
        assert h.tokens[-1] == CASES[case]["eos_index"]


@pytest.mark.parametrize("case", list(CASES))
def test_fixture_case(tr, case):
    meta = CASES[case]
    raw = exp(case, "units_raw").tolist()
    assert tr.encode(raw, meta["src_lang"]).tolist() == exp(case, "src_tokens").tolist()
    hyps = tr.translate(raw, meta["src_lang"], meta["tgt_lang"], nbest=5)
    _check_nbest(hyps, case)
    best = hyps[0]
    assert best.tokens.tolist() == exp(case, "tokens").tolist()
    assert abs(best.score - float(exp(case, "score"))) <= 1e-4
    assert np.abs(best.positional_scores.numpy() - exp(case, "positional_scores")).max() <= 2e-4
    assert best.text == str(exp(case, "unit_str"))
    assert best.units == [int(x) for x in best.text.split() if x != "<unk>"]


@pytest.mark.parametrize("case", list(CASES))
def test_encoder_out_and_first_step(tr, case):
    src = torch.from_numpy(exp(case, "src_tokens"))[None]
    pad = torch.zeros_like(src, dtype=torch.bool)
    with torch.inference_mode():
        enc = tr.model.encoder(src, pad)
        start = torch.tensor([[CASES[case]["eos_index"]]])
        lp = tr.model.decoder(start, tr.model.decoder.cross_keys_values(enc), None, None, 0)
    assert (enc[0] - torch.from_numpy(exp(case, "encoder_out"))).abs().max() <= 1e-4
    assert (lp[0] - torch.from_numpy(exp(case, "step0_lprobs"))).abs().max() <= 2e-4


@pytest.mark.parametrize("case", ["en_es_n5", "es_en_n27", "en_fr_n12"])
def test_cache_and_no_cache_agree(tr, case):
    meta = CASES[case]
    raw = exp(case, "units_raw").tolist()
    cached = tr.translate(raw, meta["src_lang"], meta["tgt_lang"], nbest=5, use_cache=True)
    plain = tr.translate(raw, meta["src_lang"], meta["tgt_lang"], nbest=5, use_cache=False)
    for a, b in zip(cached, plain):
        assert a.tokens.tolist() == b.tokens.tolist()
        assert abs(a.score - b.score) <= 1e-5
    _check_nbest(plain, case)


def test_batch_equals_each_alone(tr):
    cases = ["en_es_n80", "en_es_n5"]  # same pair, very different lengths: the short one is padded
    batch = tr.translate([torch.from_numpy(exp(c, "units_raw")) for c in cases], "en", "es", nbest=5)
    plain = tr.translate([torch.from_numpy(exp(c, "units_raw")) for c in cases], "en", "es", nbest=5, use_cache=False)
    assert len(batch) == 2
    assert [[h.tokens.tolist() for h in hs] for hs in batch] == [[h.tokens.tolist() for h in hs] for hs in plain]
    for c, hyps in zip(cases, batch):
        alone = tr.translate(exp(c, "units_raw").tolist(), "en", "es", nbest=5)
        assert [h.tokens.tolist() for h in hyps] == [h.tokens.tolist() for h in alone]
        assert max(abs(a.score - b.score) for a, b in zip(hyps, alone)) <= 1e-5
        _check_nbest(hyps, c)


def test_api_details(tr):
    assert tr.languages[:5] == ["en", "es", "fr", "it", "pt"] and len(tr.languages) == 19
    raw = exp("en_es_n5", "units_raw")
    one = tr.translate(torch.from_numpy(raw), "en", "es")  # a 1-D tensor; nbest=1 by default
    assert len(one) == 1 and one[0].text == str(exp("en_es_n5", "unit_str"))
    narrow = tr.translate(raw.tolist(), "en", "es", beam=2, nbest=2)
    assert len(narrow) == 2 and narrow[0].score >= narrow[1].score
    short = tr.translate(raw.tolist(), "en", "fr", max_len_b=7, nbest=5)
    assert max(len(h.tokens) for h in short) <= 8
    with pytest.raises(Unit2AVError, match="nbest"):
        tr.translate(raw.tolist(), "en", "es", nbest=6)
    with pytest.raises(Unit2AVError, match="unknown language 'xx'.*en, es, fr"):
        tr.translate(raw.tolist(), "en", "xx")
    with pytest.raises(Unit2AVError, match="empty"):
        tr.translate([], "en", "es")


def test_dictionary_rule(ckpt_dir, tmp_path, caplog):
    raw = exp("en_es_n5", "units_raw").tolist()
    # no dict given, none beside the checkpoint: the standard list, said in a log line
    with caplog.at_level(logging.INFO, logger="unit2av.translate"):
        std = load_translator(ckpt_dir / "utut_tiny.pt", device="cpu")
    assert "standard unit list 0..999" in caplog.text
    assert std.vocab.index["5"] == 9 and std.vocab.index["[en]"] == 1004 and std.vocab.symbols[-1] == "<mask>"
    assert std.translate(raw, "en", "es")[0].text == str(exp("en_es_n5", "unit_str"))
    # a dict.txt beside the checkpoint is used (here the units in reverse order: unit u at index 1003 - u)
    beside = tmp_path / "beside"
    beside.mkdir()
    os.symlink(ckpt_dir / "utut_tiny.pt", beside / "utut_tiny.pt")
    (beside / "dict.txt").write_text("".join(f"{u} 1\n" for u in reversed(range(1000))))
    rev = load_translator(beside / "utut_tiny.pt", device="cpu")
    assert rev.vocab.index["0"] == 1003 and rev.encode([0, 0, 999], "en").tolist() == [0, 1003, 4, 2, 1004]
    # ... and an explicit dict_path wins over the one beside the checkpoint
    given = load_translator(beside / "utut_tiny.pt", dict_path=UTUT / "dict.txt", device="cpu")
    assert given.vocab.index["0"] == 4
    # a dictionary of the wrong size names both sizes
    (tmp_path / "small.txt").write_text("".join(f"{u} 1\n" for u in range(500)))
    with pytest.raises(Unit2AVError, match=r"small.txt: .*= 524 entries.* 1024 rows"):
        load_translator(ckpt_dir / "utut_tiny.pt", dict_path=tmp_path / "small.txt", device="cpu")


def _resave(src, dst, edit):
    """Re-write a fixture checkpoint with ``edit(obj)`` applied (cfg.model back as a Namespace)."""
    ck = load_fairseq_checkpoint(src)
    cfg = dict(ck.cfg)
    cfg["model"] = argparse.Namespace(**cfg["model"])
    obj = {"args": None, "cfg": cfg, "model": ck.model, "task_state": {}}
    edit(obj)
    torch.save(obj, dst)


def test_fp16_checkpoint(ckpt_dir, tmp_path, tr):
    half = tmp_path / "utut_fp16.pt"
    _resave(ckpt_dir / "utut_tiny.pt", half, lambda o: o.update(model={k: v.half() for k, v in o["model"].items()}))
    assert load_fairseq_checkpoint(half).model["encoder.layer_norm.weight"].dtype == torch.float16
    t16 = load_translator(half, dict_path=UTUT / "dict.txt", device="cpu")
    assert all(p.dtype == torch.float32 for p in t16.model.parameters())
    # the same numbers as the float32 model whose weights are rounded to half precision
    t32 = load_translator(ckpt_dir / "utut_tiny.pt", dict_path=UTUT / "dict.txt", device="cpu")
    with torch.no_grad():
        for p in t32.model.parameters():
            p.copy_(p.half().float())
    raw = exp("es_en_n27", "units_raw").tolist()
    a, b = t16.translate(raw, "es", "en", nbest=5), t32.translate(raw, "es", "en", nbest=5)
    assert [h.tokens.tolist() for h in a] == [h.tokens.tolist() for h in b]
    assert max(abs(x.score - y.score) for x, y in zip(a, b)) <= 1e-6


class _Touch:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (open, (self.target, "w"))


def test_hostile_utut_checkpoint(ckpt_dir, tmp_path):
    target = tmp_path / "pwned"
    evil = tmp_path / "evil_utut.pt"
    _resave(ckpt_dir / "utut_tiny.pt", evil, lambda o: o.update(extra_state={"x": _Touch(str(target))}))
    with pytest.raises(Unit2AVError, match="refuses global .*open"):
        load_translator(evil, device="cpu")
    assert not target.exists()


def _cli(capsys, *args):
    rc = cli_main(["-q", "translate", *map(str, args)])
    return rc, capsys.readouterr()


def test_command_file_and_folder(ckpt_dir, tmp_path, capsys):
    ck = ckpt_dir / "utut_tiny.pt"
    src = tmp_path / "in"
    src.mkdir()
    (src / "a.txt").write_text(" ".join(map(str, exp("en_es_n5", "units_raw"))))
    (src / "b.txt").write_text(" ".join(map(str, exp("en_es_n80", "units_raw"))) + "\n")
    rc, _ = _cli(
        capsys,
        "--in-unit-path",
        src / "a.txt",
        "--out-unit-path",
        tmp_path / "a_es.txt",
        "--utut-path",
        ck,
        "--src-lang",
        "en",
        "--tgt-lang",
        "es",
    )
    assert rc == 0 and (tmp_path / "a_es.txt").read_text() == str(exp("en_es_n5", "unit_str"))
    rc, _ = _cli(
        capsys,
        "--in_unit_path",
        src,
        "--out_unit_path",
        tmp_path / "out",
        "--utut_path",
        ck,
        "--src_lang",
        "en",
        "--tgt_lang",
        "es",
        "--batch-size",
        "2",
    )
    assert rc == 0
    assert (tmp_path / "out" / "a.txt").read_text() == str(exp("en_es_n5", "unit_str"))
    assert (tmp_path / "out" / "b.txt").read_text() == str(exp("en_es_n80", "unit_str"))
    rc, _ = _cli(
        capsys,
        "--in-unit-path",
        src / "a.txt",
        "--out-unit-path",
        tmp_path / "n3.txt",
        "--utut-path",
        ck,
        "--src-lang",
        "en",
        "--tgt-lang",
        "es",
        "--nbest",
        "3",
        "--beam",
        "5",
        "--max-len-b",
        "200",
        "--lenpen",
        "1.0",
        "--max-len-a",
        "0",
    )
    lines = (tmp_path / "n3.txt").read_text().split("\n")
    assert rc == 0 and len(lines) == 3 and lines[0] == str(exp("en_es_n5", "unit_str"))


def test_command_bad_inputs(ckpt_dir, tmp_path, capsys):
    ck = ckpt_dir / "utut_tiny.pt"
    good, bad, empty = tmp_path / "good.txt", tmp_path / "bad.txt", tmp_path / "empty.txt"
    good.write_text("5 5 7 9")
    bad.write_text("5 5 1000 9")
    empty.write_text("")
    other = tmp_path / "hubert.pt"  # a fairseq checkpoint of another kind of model
    torch.save(
        {
            "cfg": {"model": {"_name": "hubert"}, "task": {"_name": "hubert_pretraining"}},
            "model": {"encoder.layers.0.fc1.weight": torch.zeros(2, 2)},
        },
        other,
    )
    (tmp_path / "small.txt").write_text("0 1\n1 1\n")
    out = tmp_path / "out.txt"
    cases = [
        (
            ["--in-unit-path", good, "--utut-path", ck, "--src-lang", "xx", "--tgt-lang", "es"],
            "unknown language 'xx'.*knows en, es, fr",
        ),
        (
            ["--in-unit-path", bad, "--utut-path", ck, "--src-lang", "en", "--tgt-lang", "es"],
            "bad.txt: unit 1000 is not in the UTUT vocabulary.*4 special symbols",
        ),
        (["--in-unit-path", empty, "--utut-path", ck, "--src-lang", "en", "--tgt-lang", "es"], "empty.txt: .*empty"),
        (
            ["--in-unit-path", good, "--utut-path", other, "--src-lang", "en", "--tgt-lang", "es"],
            "hubert.pt: not a UTUT/BART translation checkpoint: it is a 'hubert' model for task 'hubert_pretraining'",
        ),
        (
            [
                "--in-unit-path",
                good,
                "--utut-path",
                ck,
                "--utut-dict",
                tmp_path / "small.txt",
                "--src-lang",
                "en",
                "--tgt-lang",
                "es",
            ],
            "small.txt: .*= 26 entries.*1024 rows",
        ),
    ]
    for args, pattern in cases:
        rc, cap = _cli(capsys, *args, "--out-unit-path", out)
        err = cap.err.strip().splitlines()
        assert rc == 2 and len(err) == 1 and err[0].startswith("unit2av translate: error: "), cap.err
        assert re.search(pattern, err[0]), err[0]
        assert not out.exists()


def test_bench_utut_post_norm_relu_paths_agree():
    """The benchmark's function at a tiny post-norm ReLU size (BART-large's layer order): all paths agree."""
    import importlib.util

    from conftest import ROOT

    spec = importlib.util.spec_from_file_location("bench_utut", ROOT / "benchmarks" / "bench_utut.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    small = dict(
        encoder_layers=2,
        decoder_layers=2,
        encoder_embed_dim=64,
        decoder_embed_dim=64,
        encoder_ffn_embed_dim=128,
        decoder_ffn_embed_dim=128,
        encoder_attention_heads=4,
        decoder_attention_heads=4,
        encoder_normalize_before=False,
        decoder_normalize_before=False,
        activation_fn="relu",
    )
    r = bench.bench_utut(units=30, beam=3, max_len_b=12, repeats=1, threads=1, **small)
    assert r["same_hypotheses"] and r["same_hypotheses_cache"] and r["max_abs_score_diff"] <= 1e-5
    assert 2 <= r["steps"] <= 13 and r["fast"]["ms_per_step"] > 0 and r["no_cache"]["tokens_per_s"] > 0


def test_decoder_products_prepacked_on_the_cpu(tr):
    """The default CPU path decodes through prepacked oneDNN weights (the fixture cases above run on it)."""
    from unit2av import onednn

    if not onednn.packing_available():
        pytest.skip("this PyTorch has no oneDNN prepacking")
    dec = tr.model.decoder
    assert all(layer.fc1.packed is not None and layer.self_attn.qkv_packed is not None for layer in dec.layers)
    assert dec.output_projection.packed is not None
    assert all(layer.fc1.packed is None for layer in tr.model.encoder.layers)  # run once per sentence: not packed


def test_a_copied_model_decodes_the_same(tr):
    """copy.deepcopy of a loaded (fused, prepacked) model works and gives the same hypotheses."""
    import copy

    raw = exp("es_en_n27", "units_raw").tolist()
    twin = copy.deepcopy(tr)
    a, b = tr.translate(raw, "es", "en", nbest=5), twin.translate(raw, "es", "en", nbest=5)
    assert [h.tokens.tolist() for h in a] == [h.tokens.tolist() for h in b]
    assert [h.score for h in a] == [h.score for h in b]
