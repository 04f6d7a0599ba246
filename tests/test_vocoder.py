"""UnitVocoder against the reference numbers, weight-norm layouts, and checkpoint containers."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch

from unit2av import load_vocoder
from unit2av.errors import Unit2AVError
from unit2av.vocoder.checkpoint import save_generator
from unit2av.vocoder.config import load_config
from unit2av.vocoder.model import UnitVocoder
from unit2av.weightnorm import to_legacy_keys


def _t(a, dtype=torch.float32):
    return torch.from_numpy(np.asarray(a)).to(dtype)


@pytest.fixture(scope="module", params=["av2av", "generator"])
def ref_model(request, reference_dir, reference_config):
    if request.param == "av2av":
        return load_vocoder(reference_dir / "unit2av_ref.pt", reference_config, lang="en")
    return load_vocoder(reference_dir / "g_00000000", reference_config)


def test_plain_case(ref_model, reference_expected):
    e = reference_expected
    with torch.inference_mode():
        wav, codes = ref_model(code=_t(e["plain__code"], torch.long), spkr=_t(e["plain__spkr"]))
    assert wav.shape == e["plain__wav"].shape == (1, 1, 120 * 320)
    assert np.abs(wav.numpy() - e["plain__wav"]).max() <= 1e-4
    assert torch.equal(codes, _t(e["plain__code"], torch.long))


def test_dur_case(ref_model, reference_expected):
    e = reference_expected
    with torch.inference_mode():
        wav, expanded = ref_model(code=_t(e["dur__code"], torch.long), spkr=_t(e["dur__spkr"]), dur_prediction=True)
    assert np.array_equal(expanded.numpy(), e["dur__expanded_code"])
    assert wav.shape == e["dur__wav"].shape
    assert np.abs(wav.numpy() - e["dur__wav"]).max() <= 1e-4


def test_train_dur_loss_case(ref_model, reference_expected):
    e = reference_expected
    ref_model.train()
    try:
        wav, loss = ref_model(code=_t(e["train_dur_loss__code"], torch.long), spkr=_t(e["train_dur_loss__spkr"]))
    finally:
        ref_model.eval()
    assert np.abs(wav.detach().numpy() - e["train_dur_loss__wav"]).max() <= 1e-4
    expected = float(e["train_dur_loss__dur_loss"])
    assert abs(loss.item() - expected) <= 1e-5 * abs(expected)


def test_second_language_differs(reference_dir, reference_config, reference_expected):
    e = reference_expected
    ko = load_vocoder(reference_dir / "unit2av_ref.pt", reference_config, lang="ko")
    with torch.inference_mode():
        wav, _ = ko(code=_t(e["plain__code"], torch.long), spkr=_t(e["plain__spkr"]))
    assert np.abs(wav.numpy() - e["plain__wav"]).max() > 1e-3


def test_remove_weight_norm_same_output_and_idempotent(reference_dir, reference_config, reference_expected):
    e = reference_expected
    model = load_vocoder(reference_dir / "g_00000000", reference_config)
    model.remove_weight_norm()
    model.remove_weight_norm()  # safe twice
    assert not any("parametrizations" in k for k in model.state_dict())
    with torch.inference_mode():
        wav, _ = model(code=_t(e["plain__code"], torch.long), spkr=_t(e["plain__spkr"]))
    assert np.abs(wav.numpy() - e["plain__wav"]).max() <= 1e-4


def test_saved_generator_uses_legacy_keys_and_reloads(tmp_path, reference_dir, reference_config, reference_expected):
    model = load_vocoder(reference_dir / "g_00000000", reference_config)
    out = tmp_path / "g_00000042"
    save_generator(model, out, step=42)
    raw = torch.load(out, weights_only=True)
    original = torch.load(reference_dir / "g_00000000", weights_only=True)["generator"]
    assert set(raw["generator"]) == set(original)
    assert raw["steps"] == 42
    again = load_vocoder(out, reference_config)
    e = reference_expected
    with torch.inference_mode():
        wav, _ = again(code=_t(e["plain__code"], torch.long), spkr=_t(e["plain__spkr"]))
    assert np.abs(wav.numpy() - e["plain__wav"]).max() <= 1e-4


def test_av2av_default_config_matches_released_sizes():
    model = UnitVocoder.from_config(load_config(None))
    sd = to_legacy_keys(model.state_dict())
    assert len(sd) == 304
    assert sum(v.numel() for v in sd.values()) == 13_977_091
    assert sum(v.numel() for k, v in sd.items() if k.startswith("dur_predictor.")) == 99_201
    assert sum(v.numel() for k, v in sd.items() if k.startswith("resblocks.")) == 11_017_152


def test_speaker_id_table_and_unconditioned(reference_config):
    data = json.loads(reference_config.read_text())
    data.update(embedder_params=None, num_speakers=7)
    from unit2av.vocoder.config import config_from_dict
    from unit2av.vocoder.synth import speaker_tensor, synthesize

    model = UnitVocoder.from_config(config_from_dict(data)).eval()
    assert isinstance(model.spkr, torch.nn.Embedding) and model.spkr.num_embeddings == 7
    assert speaker_tensor(model, 3, "u.pt").tolist() == [[3]]
    with torch.inference_mode():
        wav, _ = model(code=torch.randint(0, 1000, (1, 10)).expand(2, -1), spkr=torch.tensor([[1], [3]]))
    assert wav.shape == (2, 1, 3200) and not torch.equal(wav[0], wav[1])  # same units, the id changes the voice
    data.update(multispkr=False, model_in_dim=128)
    plain = UnitVocoder.from_config(config_from_dict(data)).eval()
    assert not hasattr(plain, "spkr")
    # an unconditioned vocoder ignores a units file's speaker: it synthesises from the units alone
    assert speaker_tensor(plain, torch.zeros(256), "u.pt") is None
    wav, codes = synthesize(plain, torch.arange(4))
    assert wav.shape == (4 * 320,) and np.isfinite(wav).all() and codes.tolist() == [0, 1, 2, 3]


# ---------------------------------------------------------------- bad input
def _write(tmp_path, name, data):
    p = tmp_path / name
    p.write_text(json.dumps(data))
    return p


@pytest.mark.parametrize(
    "change, message",
    [
        ({"upsample_rates": [5, 4, 4, 2, 1]}, "product of upsample_rates"),
        ({"model_in_dim": 300}, "model_in_dim is 300"),
        ({"embedding_dim": "128"}, "key 'embedding_dim' should be int"),
        ({"code_hop_size": None, "__drop__": "code_hop_size"}, "missing key 'code_hop_size'"),
    ],
)
def test_config_errors_are_one_line(tmp_path, reference_config, change, message):
    data = json.loads(reference_config.read_text())
    drop = change.pop("__drop__", None)
    data.update(change)
    if drop:
        del data[drop]
    path = _write(tmp_path, "config.json", data)
    with pytest.raises(Unit2AVError) as err:
        load_config(path)
    assert message in str(err.value) and str(path) in str(err.value) and "\n" not in str(err.value)


def test_unknown_config_key_warns(tmp_path, reference_config, caplog):
    data = json.loads(reference_config.read_text())
    data["upsampel_rates"] = [1]
    load_config(_write(tmp_path, "c.json", data))
    assert "unknown key 'upsampel_rates'" in caplog.text


def test_checkpoint_not_fitting_config_names_keys(tmp_path, reference_dir, reference_config):
    data = json.loads(reference_config.read_text())
    data["upsample_initial_channel"] = 32
    with pytest.raises(Unit2AVError, match=r"does not fit the config: shape mismatch: conv_pre"):
        load_vocoder(reference_dir / "g_00000000", _write(tmp_path, "c.json", data))


def test_missing_language_lists_available(reference_dir, reference_config):
    with pytest.raises(Unit2AVError, match=r"no vocoder for language 'fr'; it has: en, ko"):
        load_vocoder(reference_dir / "unit2av_ref.pt", reference_config, lang="fr")
    with pytest.raises(Unit2AVError, match=r"several languages \(en, ko\)"):
        load_vocoder(reference_dir / "unit2av_ref.pt", reference_config)


class _Payload:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (open, (str(self.target), "w"))


def test_checkpoint_with_code_is_refused(tmp_path, reference_config):
    target = tmp_path / "created_by_payload"
    bad = tmp_path / "g_00000001"
    with open(bad, "wb") as f:
        pickle.dump({"generator": _Payload(target)}, f)
    with pytest.raises(Unit2AVError, match="refused to load checkpoint"):
        load_vocoder(bad, reference_config)
    assert not target.exists()
