"""backend="auto": the per-machine choice among eager / folded / channels-last, with injected timings.

No wall-clock figure is asserted: ``measure`` runs on a scripted clock, and ``choose`` gets its
timings injected. The cache lives in a temporary ``XDG_CACHE_HOME``.
"""

from __future__ import annotations

import json
import logging

import pytest
import torch

from unit2av.face.model import FaceRenderer
from unit2av.runtime import calibrate
from unit2av.runtime.fast import AUTO_CANDIDATES, fast_face_renderer, fast_vocoder
from unit2av.runtime.fold import FastFaceRenderer, FastGenerator, FastVocoder
from unit2av.vocoder.config import config_from_dict, load_config
from unit2av.vocoder.model import UnitVocoder

TOL = 1e-4
# A small vocoder (the bundled config's other fields) so that building the candidates is quick.
SMALL = {"upsample_initial_channel": 32, "resblock_kernel_sizes": [3, 5], "resblock_dilation_sizes": [[1, 3], [1, 3]]}


@pytest.fixture(autouse=True)
def cache_home(tmp_path, monkeypatch):
    """Every test: its own cache folder, calibration on, nothing remembered from earlier tests."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv(calibrate.ENV_DISABLE, raising=False)
    calibrate.forget()
    yield tmp_path / "cache" / "unit2av" / "backends.json"
    calibrate.forget()


@pytest.fixture(scope="module")
def vocoder() -> UnitVocoder:
    torch.manual_seed(0)
    cfg = config_from_dict({**load_config(None).to_dict(), **SMALL}, "small test config")
    return UnitVocoder.from_config(cfg).eval()


@pytest.fixture(scope="module")
def face() -> FaceRenderer:
    torch.manual_seed(1)
    model = FaceRenderer(width=32)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):  # not the identity, so that folding matters
                m.running_mean.normal_(0, 0.2)
                m.running_var.uniform_(0.5, 2.0)
    return model.eval()


def _timings(**ratios_to_eager: float) -> dict[str, list[float]]:
    """Five rounds per candidate: noisy round times whose minimum is ``ratio`` x eager's minimum (1 s)."""
    noise = [0.9, 0.0, 0.4, 2.5, 0.1]  # added by "other work"; the minimum is the clean run
    return {
        name: [r + n * (1 + i) for i, n in enumerate(noise)] for name, r in {"eager": 1.0, **ratios_to_eager}.items()
    }


class FakeMeasure:
    """Stands in for ``calibrate.measure``: records the candidates it was given, returns scripted times."""

    def __init__(self, times):
        self.times, self.calls = times, []

    def __call__(self, candidates, rounds=calibrate.ROUNDS, clock=None, sync=None):
        self.calls.append(sorted(candidates))
        return self.times


# ------------------------------------------------------------------------------ measuring and picking
def test_measure_warms_up_then_rotates_the_order_and_times_each_call():
    order, ticks = [], iter(range(1000))
    costs = {"eager": 5, "folded": 3, "torch": 2}  # clock ticks each call takes

    def clock():
        return float(next(ticks))

    def call(name):
        def run():
            order.append(name)
            for _ in range(costs[name] - 1):  # the call advances the clock; measure reads it once more after
                next(ticks)

        return run

    times = calibrate.measure({n: call(n) for n in costs}, rounds=3, clock=clock)
    assert order[:3] == ["eager", "folded", "torch"]  # warm-up, untimed
    assert order[3:] == ["eager", "folded", "torch", "folded", "torch", "eager", "torch", "eager", "folded"]
    assert times == {n: [float(c)] * 3 for n, c in costs.items()}


def test_pick_takes_the_fastest_clean_run_and_keeps_eager_unless_clearly_beaten():
    assert calibrate.pick(_timings(folded=0.9, torch=0.8)) == "torch"
    assert calibrate.pick(_timings(folded=0.85, torch=1.12)) == "folded"  # the Xeon case: channels-last loses
    assert calibrate.pick(_timings(folded=1.05, torch=1.2)) == "eager"
    assert calibrate.pick(_timings(folded=0.99, torch=1.3)) == "eager"  # 1 % is within the margin
    r = calibrate.ratios(_timings(folded=0.5))
    assert r == {"eager": 1.0, "folded": 0.5}
    # a single slow round (noise) does not decide: the minimum is taken
    assert calibrate.pick({"eager": [1.0, 9.0, 1.0], "torch": [9.0, 0.8, 9.0]}) == "torch"


# ------------------------------------------------------------------------------ the cache
def test_choice_is_measured_once_then_read_from_the_cache(vocoder, monkeypatch, cache_home):
    fake = FakeMeasure(_timings(folded=0.95, torch=0.7))
    monkeypatch.setattr(calibrate, "measure", fake)
    model = fast_vocoder(vocoder)
    assert isinstance(model, FastVocoder) and isinstance(model.body, FastGenerator) and model.body.channels_last
    assert fake.calls == [sorted(AUTO_CANDIDATES)]
    data = json.loads(cache_home.read_text())
    ((key, entry),) = data["entries"].items()
    assert entry["backend"] == "torch" and entry["ratios"]["torch"] == pytest.approx(0.7)
    assert key == calibrate.cache_key("vocoder", vocoder, torch.device("cpu"))
    assert calibrate.device_name(torch.device("cpu")) in key and torch.__version__ in key
    assert f"{torch.get_num_threads()} threads" in key
    calibrate.forget()  # a new process: the file answers, nothing is measured
    again = fast_vocoder(vocoder)
    assert isinstance(again, FastVocoder) and again.body.channels_last and len(fake.calls) == 1


def test_key_separates_model_shapes_and_thread_counts(vocoder, face):
    cpu = torch.device("cpu")
    keys = {
        calibrate.cache_key("vocoder", vocoder, cpu),
        calibrate.cache_key("face", face, cpu),
        calibrate.cache_key("face", FaceRenderer(width=16), cpu),
    }
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1 if threads > 1 else 2)
        keys.add(calibrate.cache_key("vocoder", vocoder, cpu))
    finally:
        torch.set_num_threads(threads)
    assert len(keys) == 4


def test_corrupt_cache_is_ignored_with_a_warning_and_rewritten(face, monkeypatch, cache_home, caplog):
    cache_home.parent.mkdir(parents=True)
    cache_home.write_text('{"version": 1, "entries": {"face ')  # cut off mid-write by hand
    fake = FakeMeasure(_timings(folded=0.8, torch=0.9))
    monkeypatch.setattr(calibrate, "measure", fake)
    with caplog.at_level(logging.WARNING, logger="unit2av.runtime.calibrate"):
        model = fast_face_renderer(face)
    assert "ignoring the unreadable backend cache" in caplog.text
    assert type(model) is FastFaceRenderer and not model.channels_last  # "folded"
    assert json.loads(cache_home.read_text())["version"] == calibrate.CACHE_VERSION  # valid again
    for bad in ("[]", '{"version": 99, "entries": {}}', '{"version": 1, "entries": []}'):
        cache_home.write_text(bad)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="unit2av.runtime.calibrate"):
            assert calibrate.read_cache(cache_home) == {}
        assert "ignoring the backend cache" in caplog.text


def test_cached_unknown_backend_is_measured_again(face, monkeypatch, cache_home):
    key = calibrate.cache_key("face", face, torch.device("cpu"))
    cache_home.parent.mkdir(parents=True)
    cache_home.write_text(
        json.dumps({"version": 1, "entries": {key: {"backend": "tensorrt"}, "other": {"backend": "torch"}}})
    )
    fake = FakeMeasure(_timings(folded=1.1, torch=1.2))
    monkeypatch.setattr(calibrate, "measure", fake)
    assert fast_face_renderer(face) is face  # eager measured fastest: the model itself
    assert len(fake.calls) == 1
    entries = json.loads(cache_home.read_text())["entries"]
    assert entries[key]["backend"] == "eager" and entries["other"] == {"backend": "torch"}  # others kept


def test_disabled_by_env_and_explicit_backend_never_measure(vocoder, monkeypatch, cache_home):
    fake = FakeMeasure(_timings(folded=0.9, torch=0.5))
    monkeypatch.setattr(calibrate, "measure", fake)
    assert isinstance(fast_vocoder(vocoder, "torch").body, FastGenerator)  # --backend overrides
    assert fast_vocoder(vocoder, "eager") is vocoder
    monkeypatch.setenv(calibrate.ENV_DISABLE, "0")
    model = fast_vocoder(vocoder)
    assert isinstance(model.body, FastGenerator) and not model.body.channels_last  # FALLBACK = folded
    assert fake.calls == [] and not cache_home.exists()


def test_unwritable_cache_warns_and_still_chooses(face, monkeypatch, tmp_path, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))  # unit2av/ cannot be made under a file
    monkeypatch.setattr(calibrate, "measure", FakeMeasure(_timings(folded=0.7, torch=0.9)))
    with caplog.at_level(logging.WARNING, logger="unit2av.runtime.calibrate"):
        model = fast_face_renderer(face)
    assert type(model) is FastFaceRenderer and not model.channels_last
    assert "cannot write the backend cache" in caplog.text


# ------------------------------------------------------------------------------ real runs
def test_real_calibration_runs_every_candidate_and_all_compute_the_same(vocoder, cache_home):
    """The candidates measured are the three paths, and each of them computes the eager output."""
    model = fast_vocoder(vocoder)  # a real (short) calibration of the small model
    (entry,) = json.loads(cache_home.read_text())["entries"].values()
    assert set(entry["ratios"]) == set(AUTO_CANDIDATES) and entry["backend"] in AUTO_CANDIDATES
    assert all(s > 0 for s in entry["seconds"].values())
    g = torch.Generator().manual_seed(3)
    code, spkr = torch.randint(0, 1000, (2, 29), generator=g), torch.randn(2, 1, 256, generator=g)
    with torch.inference_mode():
        want = vocoder(code=code, spkr=spkr)[0]
        for backend in (model, *(fast_vocoder(vocoder, b) for b in AUTO_CANDIDATES)):
            got = backend(code=code, spkr=spkr)[0]
            assert float((got - want).abs().max()) <= TOL
    assert float(want.abs().max()) > 1e-3
