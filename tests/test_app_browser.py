"""``unit2av app`` in a real browser: Debian's headless chromium, driven by selenium through Debian's chromedriver.

The app runs as a subprocess (``python -m unit2av.cli app``) on a free port, on a --root folder
holding a copy of the sample clip, its box file and a units file. Screenshots of every step go to
``build/app-screens/`` (or ``$UNIT2AV_ARTIFACTS``); the folder is printed. Nothing is downloaded:
the test skips, with its reason as a warning, only when chromium, chromedriver, selenium or gradio
are missing (``.ci/run`` installs them).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, SAMPLE_BBOX, SAMPLE_VIDEO
from test_app_dub import UTUT_DICT, pack_es_container

from unit2av.cli import main as cli_main
from unit2av.demo.video import asset
from unit2av.io.boxes import read_boxes
from unit2av.io.media import iter_frames
from unit2av.prepare.faces import DetectOptions, detect_video

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ARTIFACTS = Path(os.environ.get("UNIT2AV_ARTIFACTS", ROOT / "build" / "app-screens"))
CHROME_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
    "--autoplay-policy=no-user-gesture-required",
    "--window-size=1400,2600",
]
STEP_TIMEOUT = 120  # seconds one step (a render on a busy 2-core machine) may take


def _missing() -> str | None:
    """Why the browser test cannot run here, or None."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not path.exists():
            return f"{path} not found (apt-get install chromium chromium-driver)"
    for module, extra in (("selenium", "pip install selenium"), ("gradio", "pip install 'unit2av[app]'")):
        if importlib.util.find_spec(module) is None:
            return f"python module {module} missing ({extra})"
    return None


def _skip_unless_browser():
    reason = _missing()
    if reason:
        warnings.warn(f"browser test skipped: {reason}", stacklevel=2)
        pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app(tmp_path_factory, reference_dir, reference_config, av2unit_ckpt, utut_ckpt):
    """The running app: ``(url, root, work)``; under --models the fixture mAV-HuBERT checkpoint and an AV2AV
    container with an "es" vocoder, under --root the fixture UTUT checkpoint and its dict.txt (the dub panel)."""
    _skip_unless_browser()
    base = tmp_path_factory.mktemp("app")
    root, work, models = base / "root", base / "work", base / "models"
    (root / "utut").mkdir(parents=True)
    models.mkdir()
    for src in (SAMPLE_VIDEO, SAMPLE_BBOX):
        shutil.copyfile(src, root / src.name)
    shutil.copyfile(utut_ckpt, root / "utut" / "utut_tiny.pt")
    shutil.copyfile(UTUT_DICT, root / "utut" / "dict.txt")
    shutil.copyfile(av2unit_ckpt, models / "mavhubert_tiny.pt")
    pack_es_container(reference_dir, reference_config, base / "build", models / "av2av_es.pt")
    script = json.loads(asset("demo_script.json").read_text())
    (root / "units.txt").write_text(" ".join(map(str, script["sentences"][1]["units"])))  # real units, ~2 s
    port = _free_port()
    env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False", PYTHONUNBUFFERED="1")
    log = open(base / "app.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "unit2av.cli",
            "app",
            "--root",
            str(root),
            "--port",
            str(port),
            "--work-dir",
            str(work),
            "--models",
            str(models),
            "--device",
            "cpu",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=base,
    )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            log.close()
            pytest.fail(f"the app did not start:\n{(base / 'app.log').read_text()[-3000:]}")
        time.sleep(0.5)
    yield url, root, work
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@pytest.fixture(scope="module")
def browser(app, tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROME_FLAGS + [f"--user-data-dir={tmp_path_factory.mktemp('chrome-profile')}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_script_timeout(30)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    print(f"\nscreenshots of the app: {ARTIFACTS}")
    yield driver
    driver.quit()


class Page:
    """The app's page in one browser tab, addressed by the elem_ids of ``unit2av.app.ui``."""

    def __init__(self, driver, url: str):
        self.d = driver
        driver.get(url)
        self.wait(
            lambda: self.d.execute_script("return !!document.querySelector('#u2av-status textarea')"),
            "the page to load",
        )
        self.wait(lambda: self.js("return document.querySelector('#u2av-model input').value") != "", "models")

    def js(self, script: str, *args):
        return self.d.execute_script(script, *args)

    def wait(self, cond, what: str, timeout: float = STEP_TIMEOUT):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = cond()
            if value:
                return value
            time.sleep(0.25)
        self.shot("timeout")
        raise AssertionError(f"timed out waiting for {what}; status: {self.status()!r}")

    def click(self, element):
        """Click once nothing covers the element (Gradio shows a loading overlay while an event runs)."""
        from selenium.common.exceptions import ElementClickInterceptedException

        self.js("arguments[0].scrollIntoView({block: 'center'})", element)

        def attempt():
            try:
                element.click()
                return True
            except ElementClickInterceptedException:
                return False

        self.wait(attempt, "the element to be clickable", timeout=30)

    def status(self) -> str:
        return self.js("return document.querySelector('#u2av-status textarea').value")

    def type(self, elem_id: str, text: str, enter: bool = False):
        from selenium.webdriver.common.by import By
        from selenium.webdriver.common.keys import Keys

        field = self.d.find_element(By.CSS_SELECTOR, f"#{elem_id} input, #{elem_id} textarea")
        self.click(field)
        field.send_keys(Keys.CONTROL, "a")
        field.send_keys(Keys.DELETE)
        field.send_keys(text)
        field.send_keys(*((Keys.ENTER, Keys.ESCAPE) if enter else (Keys.TAB,)))  # a dropdown: take it, close it

    def press(self, elem_id: str, expect: str, timeout: float = STEP_TIMEOUT) -> str:
        """Click a button; wait until the status changes and contains ``expect``."""
        from selenium.webdriver.common.by import By

        before = self.status()
        self.click(self.d.find_element(By.ID, elem_id))
        return self.wait(
            lambda: (lambda s: s if s != before and expect in s else None)(self.status()),
            f"{elem_id}: status with {expect!r}",
            timeout,
        )

    def upload(self, button: str, path: Path, expect: str) -> str:
        """Upload ``path`` through the upload button labelled ``button``; wait for ``expect`` in the status."""
        from selenium.webdriver.common.by import By

        before = self.status()
        self.d.find_element(By.CSS_SELECTOR, f'input[data-testid="{button}-upload-button"]').send_keys(str(path))
        return self.wait(
            lambda: (lambda s: s if s != before and expect in s else None)(self.status()),
            f"upload {path.name}: status with {expect!r}",
        )

    def click_strip(self, frame: int, num_frames: int) -> str:
        """Click the middle of ``frame``'s column on the timeline strip; wait for the status to change."""
        from selenium.webdriver.common.action_chains import ActionChains
        from selenium.webdriver.common.by import By

        before = self.status()
        img = self.d.find_element(By.CSS_SELECTOR, "#u2av-strip img")
        self.js("arguments[0].scrollIntoView({block: 'center'})", img)
        width = img.size["width"]
        x = (frame + 0.5) / num_frames * width - width / 2  # offset from the image's centre
        ActionChains(self.d).move_to_element_with_offset(img, int(x), 0).click().perform()
        return self.wait(lambda: (lambda s: s if s != before else None)(self.status()), "the strip click")

    def shot(self, name: str) -> Path:
        path = ARTIFACTS / f"{name}.png"
        self.d.save_screenshot(str(path))
        return path


def _decoded_size(page: Page, elem_id: str):
    """[width, height] of the frames the browser decoded in a player (0 until it can play them), or None."""
    return page.js(
        f"const v = document.querySelector('#{elem_id} video');"
        "return v && v.readyState >= 2 && v.videoWidth > 0 ? [v.videoWidth, v.videoHeight] : null"
    )


def _external_requests(driver, url: str) -> list[str]:
    """URLs the browser asked for that are not the app itself (nor browser-internal)."""
    out = []
    for entry in driver.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        if msg["method"] == "Network.requestWillBeSent":
            u = msg["params"]["request"]["url"]
            if not u.startswith((url, "data:", "blob:", "chrome:", "chrome-extension:", "about:")):
                out.append(u)
    return out


def test_review_save_and_dub_in_the_browser(app, browser, tmp_path):
    url, root, work = app
    page = Page(browser, url)
    page.shot("01-start")
    page.type("u2av-video", SAMPLE_VIDEO.name, enter=True)
    assert "70 frames" in page.press("u2av-open", "70 frames")
    assert page.wait(lambda: _decoded_size(page, "u2av-original"), "the video to play") == [224, 224]
    page.shot("02-opened")

    status = page.press("u2av-detect", "detected")
    assert "70 frames, 0 without a box" in status, status
    page.shot("03-detected")

    page.type("u2av-ranges", "10:20")
    status = page.press("u2av-none", "set to None")
    assert "70 frames, 10 without a box (10:20, end exclusive)" in status, status
    strip = page.js("return document.querySelector('#u2av-strip img').naturalWidth")
    assert strip == 1280
    page.js("document.querySelector('#u2av-original video').removeAttribute('src')")
    page.press("u2av-boxes-video", "boxes drawn")
    assert page.wait(lambda: _decoded_size(page, "u2av-original"), "the video with boxes") == [224, 224]
    assert "boxes" in page.js("return document.querySelector('#u2av-original video').currentSrc")
    page.shot("04-marked-none")

    save_as = page.js("return document.querySelector('#u2av-save-as textarea, #u2av-save-as input').value")
    assert save_as == SAMPLE_BBOX.name  # the box file beside the video is the default target
    status = page.press("u2av-save", "saved")
    assert "kept as" in status and SAMPLE_BBOX.name + ".bak" in status, status
    page.shot("05-saved")
    saved = read_boxes(root / SAMPLE_BBOX.name)
    detected = detect_video(root / SAMPLE_VIDEO.name, DetectOptions(), progress=False).boxes
    assert len(saved) == 70 and all(saved[i] is None for i in range(10, 20))
    for i in [*range(10), *range(20, 70)]:
        np.testing.assert_allclose(saved[i], detected[i], atol=1e-4)
    assert (root / (SAMPLE_BBOX.name + ".bak")).read_bytes() == SAMPLE_BBOX.read_bytes()

    page.type("u2av-units", "units.txt", enter=True)
    status = page.press("u2av-render", "rendered", timeout=240)
    page.js("document.querySelector('#u2av-dub').scrollIntoView()")
    duration = page.wait(
        lambda: page.js(
            "const v = document.querySelector('#u2av-dub video');"
            "return v && v.readyState >= 1 && !v.error ? v.duration : 0"
        ),
        "a playable dubbed video",
    )
    assert duration > 1.5, duration  # ~2 s of speech
    assert page.wait(lambda: _decoded_size(page, "u2av-dub"), "decoded dubbed frames") == [224, 224]
    assert page.wait(lambda: _decoded_size(page, "u2av-cmp-orig"), "decoded original frames") == [224, 224]
    for image in ("u2av-preview", "u2av-spectrogram"):
        assert (
            page.wait(
                lambda i=image: page.js(
                    f"const m = document.querySelector('#{i} img');return m && m.complete ? m.naturalWidth : 0"
                ),
                image,
            )
            > 100
        )
    page.shot("06-rendered")

    page.js("document.querySelector('#u2av-dub video').play()")
    time.sleep(1.0)
    orig_t, dub_t, orig_paused = page.js(
        "const o = document.querySelector('#u2av-cmp-orig video');"
        "const d = document.querySelector('#u2av-dub video');"
        "return [o.currentTime, d.currentTime, o.paused];"
    )
    assert not orig_paused and dub_t > 0.3 and abs(orig_t - dub_t) < 0.35, (orig_t, dub_t, orig_paused)
    page.js("document.querySelector('#u2av-dub video').pause()")
    assert page.wait(lambda: page.js("return document.querySelector('#u2av-cmp-orig video').paused"), "sync pause")

    # the app's video (fetched as the page plays it) equals `unit2av render` run on the same inputs
    src = page.js("return document.querySelector('#u2av-dub video').currentSrc")
    served = tmp_path / "served.mp4"
    with urllib.request.urlopen(src) as r:
        served.write_bytes(r.read())
    command = page.js("return document.querySelector('#u2av-command textarea').value")
    argv = shlex.split(command)
    argv[argv.index("--out-vid-path") + 1] = str(tmp_path / "cli.mp4")
    assert argv[:2] == ["unit2av", "render"] and cli_main(argv[1:]) == 0
    app_frames, cli_frames = list(iter_frames(served)), list(iter_frames(tmp_path / "cli.mp4"))
    assert len(app_frames) == len(cli_frames) > 40
    assert all(np.array_equal(a, b) for a, b in zip(app_frames, cli_frames))
    assert _external_requests(browser, url) == []


def test_two_tabs_keep_their_own_state_and_errors_show_in_the_page(app, browser, capsys):
    url, root, _ = app
    shutil.copyfile(SAMPLE_BBOX, root / "tabs.bbox.pkl")  # the original boxes (the other test saves edits)
    first = Page(browser, url)
    first.type("u2av-video", SAMPLE_VIDEO.name, enter=True)
    first.press("u2av-open", "70 frames")
    first.type("u2av-bbox", "tabs.bbox.pkl", enter=True)
    assert "70 frames, 0 without a box" in first.press("u2av-load", "boxes")
    first.type("u2av-ranges", "0:5")
    assert "70 frames, 5 without a box (0:5" in first.press("u2av-none", "set to None")
    for frame in (44, 40):  # two clicks on the strip pick a range, both frames included
        first.click_strip(frame, 70)
    first.wait(
        lambda: first.js("return document.querySelector('#u2av-ranges textarea, #u2av-ranges input').value") == "40:45",
        "the picked range",
    )
    tab_one = browser.current_window_handle

    browser.switch_to.new_window("tab")
    second = Page(browser, url)
    assert second.status() == ""  # a fresh tab: nothing open
    second.type("u2av-ranges", "1:2")
    assert second.press("u2av-none", "error:").startswith("error: no video open")
    second.type("u2av-video", "/etc/hostname", enter=True)
    assert "is outside the --root folder" in second.press("u2av-open", "error:")
    second.type("u2av-video", "../" + SAMPLE_VIDEO.name, enter=True)
    assert "is outside the --root folder" in second.press("u2av-open", "error:")
    second.upload("Upload a video", SAMPLE_VIDEO, "70 frames")  # uploads come from anywhere
    second.upload("Upload .bbox.pkl", SAMPLE_BBOX, "70 frames, 0 without a box")
    assert (
        second.js("return document.querySelector('#u2av-save-as textarea, #u2av-save-as input').value")
        == SAMPLE_BBOX.name
    )  # an uploaded file is saved under --root
    second.type("u2av-ranges", "500:600")
    shown = second.press("u2av-none", "error:")
    second.shot("07-error-in-page")
    assert cli_main(["bbox", "edit", str(root / "tabs.bbox.pkl"), "--none", "500:600"]) == 2
    cli_line = capsys.readouterr().err.strip().splitlines()[-1]
    problem = cli_line.split(": ", 2)[-1].split(": ", 1)[-1]  # after "unit2av bbox: error: <file>: "
    assert shown.startswith("error: ") and "\n" not in shown and shown.endswith(problem), (shown, cli_line)
    second.type("u2av-ranges", "30:40")
    assert "70 frames, 10 without a box (30:40" in second.press("u2av-none", "set to None")

    browser.switch_to.window(tab_one)  # the first tab's boxes are untouched by the second's edits
    status = first.press("u2av-undo", "undone")
    assert "70 frames, 0 without a box" in status and "1 edit" not in status, status
    first.type("u2av-ranges", "2:3")
    assert "70 frames, 1 without a box (2:3" in first.press("u2av-none", "set to None")
    first.shot("08-first-tab-after-second")


def test_translate_and_dub_in_the_browser(app, browser):
    url, root, _ = app
    shutil.copyfile(SAMPLE_BBOX, root / "dub.bbox.pkl")
    page = Page(browser, url)
    page.type("u2av-video", SAMPLE_VIDEO.name, enter=True)
    page.press("u2av-open", "70 frames")
    page.type("u2av-bbox", "dub.bbox.pkl", enter=True)
    page.press("u2av-load", "0 without a box")
    page.type("u2av-tr-av2unit", "mavhubert_tiny.pt", enter=True)  # found under --models
    page.type("u2av-tr-dict", "utut/dict.txt")
    before = page.status()
    page.type("u2av-tr-utut", "utut/utut_tiny.pt", enter=True)  # loads it: the languages fill the dropdowns
    status = page.wait(lambda: (lambda s: s if s != before and "languages" in s else None)(page.status()), "langs")
    assert "19 languages; the container voices en, es" in status, status
    value = "return document.querySelector('#{} input').value"
    assert [page.js(value.format(i)) for i in ("u2av-tr-src", "u2av-tr-tgt", "u2av-tr-model")] == [
        "en",
        "es",
        "av2av_es.pt",
    ]
    status = page.press("u2av-tr-dub", "dubbed", timeout=240)
    assert status.startswith("dubbed en -> es as ") and "140 source units" in status, status
    assert page.wait(lambda: _decoded_size(page, "u2av-dub"), "decoded dubbed frames") == [224, 224]
    units = "return document.querySelector('#{} textarea').value"
    source, target = (page.js(units.format(i)).split() for i in ("u2av-tr-src-units", "u2av-tr-tgt-units"))
    assert len(source) == 140 and target and all(u.isdigit() for u in source + target)
    command = shlex.split(page.js("return document.querySelector('#u2av-command textarea').value"))
    assert command[:2] == ["unit2av", "dub"] and command[command.index("--utut-dict") + 1] == str(
        root / "utut/dict.txt"
    )
    page.shot("09-translated-and-dubbed")
