"""The Gradio Space (space/): answers in the page, bad inputs, a real browser, load, memory, deployment.

Servers listen on 127.0.0.1 only; every request loop is bounded. Screenshots go to
test-artifacts/space/ (gitignored).
"""

import importlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import types
import urllib.request
import zipfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml

from conftest import ROOT, SR, speech_like

SPACE = ROOT / "space"
APP = SPACE / "app.py"
ARTIFACTS = ROOT / "test-artifacts" / "space"
LOOPBACK = "127.0.0.1"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_PACKAGE = "chromium"  # Debian's; scripts/setup.sh installs it
# Playwright's own browser download is unreachable; Debian's chromium, kept off the network.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"]
VERDICT = re.compile(r"Verdict: \**(bona fide|spoof)")  # Markdown source or rendered text
PROBABILITY = re.compile(r"Probability bona fide: (\d{1,3}\.\d) %")
START_TIMEOUT_S = 300  # importing torch + transformers + gradio on 2 busy cores takes up to a minute


# ---------------------------------------------------------------------------------------------
# helpers


SPACE_MODULES = ("settings", "verdict", "recording", "render", "detector", "app", "assemble")


def load_space_modules() -> types.SimpleNamespace:
    """space/'s modules, imported as ``python space/app.py`` imports them: space/ first on the path.

    space/ is a folder of scripts, not a package; the path entry is the test's, for the import only.
    """
    sys.path.insert(0, str(SPACE))
    try:
        return types.SimpleNamespace(**{name: importlib.import_module(name) for name in SPACE_MODULES})
    finally:
        sys.path.remove(str(SPACE))


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, url: str, process: subprocess.Popen, log: Path):
        self.url, self.process, self.log = url, process, log

    def log_tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:]


def wait_until_up(url: str, process: subprocess.Popen, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the app exited with {process.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(1)
    pytest.fail(f"the app did not answer within {timeout:.0f} s:\n{log.read_text(errors='replace')[-3000:]}")


@contextmanager
def running_app(args: list[str], log: Path, cwd: Path = ROOT, python: str = sys.executable, env: dict | None = None):
    """Start ``python ARGS --host 127.0.0.1 --port FREE`` and stop it afterwards."""
    port = free_port()
    loopback = f"{LOOPBACK},localhost"
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False", "NO_PROXY": loopback, "no_proxy": loopback, **(env or {})}
    with open(log, "w") as out:
        process = subprocess.Popen([python, *args, "--host", LOOPBACK, "--port", str(port)], cwd=cwd, env=full_env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://{LOOPBACK}:{port}/"
    try:
        wait_until_up(url, process, log, START_TIMEOUT_S)
        yield Server(url, process, log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def write_clip(path: Path, seconds: float, seed: int = 0) -> Path:
    sf.write(str(path), speech_like(seconds, seed), SR, subtype="PCM_16")
    return path


def predict(client, path: Path, timeout: float = 300):
    from gradio_client import handle_file

    return client.submit(handle_file(str(path)), api_name="/analyse").result(timeout=timeout)


def rss_bytes(pid: int) -> int:
    import psutil

    return psutil.Process(pid).memory_info().rss


def peak_rss_bytes(pid: int) -> int:
    """VmHWM: the highest resident set size since the process started or its peak was reset."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc status")


def reset_peak_rss(pid: int) -> bool:
    """Writing 5 to clear_refs resets VmHWM to the current RSS (Linux ≥ 4.0); False where not allowed."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


# ---------------------------------------------------------------------------------------------
# the page's answers, in process


@pytest.fixture(scope="module")
def space():
    return load_space_modules()


@pytest.fixture(scope="module")
def detector(space, tiny_model_dir):
    from racl.scoring import Scorer

    scorer = Scorer.from_pretrained(str(tiny_model_dir), device="cpu", batch_size=4)
    return space.detector.Detector(scorer, space.settings.Settings(model=str(tiny_model_dir), max_seconds=60))


def test_long_recording_gets_verdict_probability_score_and_timeline(detector, write_wav):
    text, probability, timeline, spectrogram = detector.analyse(str(write_wav("talk.wav", seconds=10.0)))
    assert VERDICT.search(text) and "higher = more bona fide" in text
    shown = float(PROBABILITY.search(text).group(1))
    assert set(probability) == {"bona fide", "spoof"} and probability["bona fide"] + probability["spoof"] == pytest.approx(1.0)
    assert shown == pytest.approx(100 * probability["bona fide"], abs=0.051)
    assert ("bona fide" in VERDICT.search(text).group(1)) == (probability["bona fide"] >= 0.5)
    assert "4 window(s)" in text  # 10 s in 4 s windows every 2 s
    assert timeline is not None and timeline.size[0] > 300 and timeline.size[1] > 100
    assert spectrogram is not None and spectrogram.size[0] > 300


def test_a_single_window_has_no_timeline(detector, write_wav):
    text, probability, timeline, spectrogram = detector.analyse(str(write_wav("short.wav", seconds=3.0)))
    assert VERDICT.search(text) and probability is not None
    assert timeline is None and spectrogram is not None


def test_silence_is_scored_not_refused(detector, write_wav):
    text, probability, _, _ = detector.analyse(str(write_wav("silence.wav", wave=np.zeros(5 * SR, dtype=np.float32))))
    assert VERDICT.search(text) and probability is not None


@pytest.fixture(scope="module")
def speech_aware_detector(space, tiny_model_dir):
    from racl.scoring import Scorer

    scorer = Scorer.from_pretrained(str(tiny_model_dir), device="cpu", batch_size=4, vad=True)
    return space.detector.Detector(scorer, space.settings.Settings(model=str(tiny_model_dir), max_seconds=60))


@pytest.mark.parametrize("kind", ["silence", "noise"])
def test_no_speech_is_said_instead_of_a_verdict(speech_aware_detector, write_wav, kind):
    wave = np.zeros(9 * SR, np.float32) if kind == "silence" else (0.2 * np.random.default_rng(0).standard_normal(9 * SR)).astype(np.float32)
    text, probability, timeline, spectrogram = speech_aware_detector.analyse(str(write_wav(f"{kind}.wav", wave=wave)))
    assert "Verdict: **no speech**" in text and not VERDICT.search(text)
    assert probability is None and timeline is not None and spectrogram is not None


def test_speech_gets_a_verdict_with_the_speech_detector_on(speech_aware_detector, write_wav):
    from test_vad import SENTENCE, espeak

    wave = np.concatenate([espeak(SENTENCE), np.zeros(8 * SR, np.float32)])
    text, probability, _, _ = speech_aware_detector.analyse(str(write_wav("speech.wav", wave=wave)))
    assert VERDICT.search(text) and probability is not None
    assert "windows that hold speech vote" in text  # the silent tail is left out, and the page says so


def test_chunked_scoring_equals_the_library_scorer(space, detector):
    """The app scores a few batches at a time; the numbers must be those of Scorer.score_waveform."""
    wave = speech_like(23.0, seed=3)
    chunked = space.recording.score_in_chunks(detector.scorer, wave, chunk_batches=1)  # 11 windows, batches of 4: 3 chunks
    whole = detector.scorer.score_waveform(wave)
    assert len(chunked.windows) == len(whole.windows) == 11
    assert [(w.start, w.end) for w in chunked.windows] == [(w.start, w.end) for w in whole.windows]
    np.testing.assert_allclose([w.score for w in chunked.windows], [w.score for w in whole.windows], atol=1e-5)
    assert chunked.score == pytest.approx(whole.score, abs=1e-5) and chunked.label == whole.label


def _nan_wave():
    wave = speech_like(2.0)
    wave[100:110] = np.nan
    return wave


def _inf_wave():
    wave = speech_like(2.0)
    wave[5] = np.inf
    return wave


BAD_INPUTS = {
    # case: (how to write the file, words the page must show)
    "empty file": (lambda p: p.write_bytes(b""), ["Could not read this file", "empty file"]),
    "zero-length audio": (lambda p: sf.write(str(p), np.zeros(0, dtype=np.float32), SR), ["Could not read this file", "zero-length"]),
    "corrupt header": (lambda p: p.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00garbage" + bytes(range(256)) * 8), ["Could not read this file"]),
    "NaN samples": (lambda p: sf.write(str(p), _nan_wave(), SR, subtype="FLOAT"), ["Could not read this file", "NaN/Inf"]),
    "Inf samples": (lambda p: sf.write(str(p), _inf_wave(), SR, subtype="FLOAT"), ["Could not read this file", "NaN/Inf"]),
    "not audio": (lambda p: p.write_text("this is a text file, not a recording\n" * 50), ["Could not read this file"]),
    "too short": (lambda p: sf.write(str(p), speech_like(0.02), SR), ["Too short to judge"]),
    "too long": (lambda p: sf.write(str(p), np.zeros(61 * SR, dtype=np.int16), SR), ["too long", "at most 1 min"]),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_inputs_are_answered_in_the_page(detector, tmp_path, case):
    write, words = BAD_INPUTS[case]
    path = tmp_path / "upload" / "recording.wav"
    path.parent.mkdir()
    write(path)
    text, probability, timeline, spectrogram = detector.analyse(str(path))
    for word in words:
        assert word in text, text
    assert "recording.wav" in text  # named by its own name
    assert str(tmp_path) not in text  # the server's temp path means nothing to the user
    assert "Traceback" not in text and probability is None and timeline is None and spectrogram is None


def test_no_file_asks_for_one(detector):
    assert "Upload a recording" in detector.analyse(None)[0]


def test_too_long_is_refused_before_decoding(space, detector, tmp_path, monkeypatch):
    """The header's duration is checked first, so a huge upload is never decoded into memory."""
    path = tmp_path / "long.wav"
    sf.write(str(path), np.zeros(61 * SR, dtype=np.int16), SR)

    def must_not_decode(*_):
        raise AssertionError("decoded a file that the header already showed to be too long")

    monkeypatch.setattr(space.recording, "load_audio", must_not_decode)
    assert "too long" in detector.analyse(str(path))[0]


def test_an_unexpected_failure_is_a_message_not_a_traceback(detector, write_wav, monkeypatch):
    def broken(_windows, _familiarity=None):
        raise RuntimeError("out of memory (simulated)")

    monkeypatch.setattr(detector.scorer, "score_windows", broken)
    text, probability, _, _ = detector.analyse(str(write_wav("ok.wav", seconds=2.0)))
    assert "Something went wrong" in text and "RuntimeError" in text and "Traceback" not in text
    assert probability is None


def test_settings_come_from_flag_then_environment_then_space_config(space, tmp_path, monkeypatch):
    (tmp_path / "model").mkdir()
    config = tmp_path / "space_config.json"
    config.write_text(json.dumps({"model": "model", "max_seconds": 600, "concurrency": 3}))
    monkeypatch.setattr(space.settings, "CONFIG_FILE", config)
    monkeypatch.setenv("RACL_MAX_SECONDS", "900")
    monkeypatch.delenv("RACL_MODEL", raising=False)
    monkeypatch.delenv("RACL_CONCURRENCY", raising=False)
    settings = space.settings.load_settings(["--batch-size", "2"])
    assert settings.model == str(tmp_path / "model")  # relative to the Space folder
    assert (settings.max_seconds, settings.concurrency, settings.batch_size, settings.queue_size) == (900.0, 3, 2, 32)
    assert space.settings.load_settings(["--max-seconds", "30"]).max_seconds == 30.0
    assert space.settings.load_settings([], config_file=tmp_path / "none.json").max_seconds == 900.0  # no file: env


def test_limitations_come_from_the_model_card(space, tiny_model_dir, tmp_path):
    section = space.app.model_card_section(str(tiny_model_dir))
    assert section and "unseen" in section and "## " not in section
    assert space.app.model_card_section(str(tmp_path)) is None  # no README: no section, no crash


def test_long_timelines_are_binned_for_display(space):
    from racl.scoring import ClipScore, WindowScore

    n = 4000
    windows = [WindowScore(2.0 * i, 2.0 * i + 4, float(np.sin(i / 50))) for i in range(n)]
    result = ClipScore(path="long", score=0.0, p_bonafide=0.5, label="bonafide", duration=2.0 * n + 2, windows=windows)
    render = space.render
    t, mean, low, high = render.bin_series(np.arange(n, dtype=float), np.array([w.score for w in windows]), render.MAX_PLOT_POINTS)
    assert len(t) == render.MAX_PLOT_POINTS and (low <= mean + 1e-12).all() and (mean <= high + 1e-12).all()
    assert render.timeline_image(result, 0.0).size[0] > 300
    regions = space.verdict.spoof_regions(windows[:200], 0.0)
    assert regions and all(a < b for a, b in regions)


# ---------------------------------------------------------------------------------------------
# assembling the Space folder


@pytest.fixture(scope="module")
def assembled_space(tmp_path_factory, tiny_model_dir):
    out = tmp_path_factory.mktemp("space") / "racl-space"
    done = subprocess.run([sys.executable, str(SPACE / "assemble.py"), "--model", str(tiny_model_dir), "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return out


def requirement_lines(folder: Path) -> list[str]:
    return [ln for ln in folder.joinpath("requirements.txt").read_text().splitlines() if ln and not ln.startswith("#")]


def app_help(folder: Path) -> subprocess.CompletedProcess:
    """``python app.py --help`` inside ``folder``: it imports the app and every sibling module it needs."""
    return subprocess.run([sys.executable, "app.py", "--help"], cwd=folder, capture_output=True, text=True, timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"})


def test_assembled_space_is_complete_and_pinned(space, assembled_space, tiny_model_dir):
    import gradio
    from importlib.metadata import version

    names = {p.name for p in assembled_space.iterdir()}
    modules = {p.name for p in SPACE.glob("*.py")} - {"assemble.py"}
    assert {"app.py", "settings.py", "recording.py", "verdict.py", "render.py", "detector.py"} <= modules
    assert modules | {"README.md", "requirements.txt", "space_config.json", "model", "examples"} <= names
    assert "assemble.py" not in names and not list(assembled_space.glob("examples/*.sh"))
    front = yaml.safe_load(assembled_space.joinpath("README.md").read_text().split("---\n")[1])
    assert (front["sdk"], front["sdk_version"], front["app_file"]) == ("gradio", gradio.__version__, "app.py")
    assert json.loads(assembled_space.joinpath("space_config.json").read_text()) == {"model": "model"}
    assert {p.name for p in tiny_model_dir.iterdir()} <= {p.name for p in (assembled_space / "model").iterdir()}

    lines = requirement_lines(assembled_space)
    racl_lines = [ln for ln in lines if ".whl" in ln]
    assert len(racl_lines) == 1 and racl_lines[0].endswith(".whl[space]"), "the wheel with its space extra: pip resolves it"
    wheel = assembled_space / racl_lines[0].removesuffix("[space]")
    assert wheel.is_file()
    pins = dict(ln.split("==") for ln in lines if ln not in racl_lines)
    assert len(pins) == len(lines) - 1, "every third-party line is an exact pin"
    for package in ("torch", "torchaudio", "transformers", "gradio", "soundfile", "numpy", "matplotlib", "pillow"):
        assert pins[package] == version(package)
    assert list(pins)[0] == "torch"
    assert not {"datasets", "accelerate", "diffusers", "scikit-learn", "scipy"} & set(pins), "the Space scores: no training or build stack"
    with zipfile.ZipFile(wheel) as zf:
        assert {"racl/scoring.py", "racl/audio.py", "modeling_racl/configuration_racl.py"} <= set(zf.namelist())
    shown = app_help(assembled_space)
    assert shown.returncode == 0 and "RACL_MAX_SECONDS" in shown.stdout, shown.stderr[-3000:]


def test_a_private_space_carries_the_packages_beside_the_app(space, tiny_model_dir, tmp_path):
    """A private Space's wheel cannot be fetched by URL: its packages are unpacked next to app.py instead."""
    out = space.assemble.assemble(str(tiny_model_dir), tmp_path / "private", vendor=True)
    assert not list(out.glob("*.whl")) and (out / "racl" / "scoring.py").is_file() and (out / "modeling_racl").is_dir()
    lines = requirement_lines(out)
    assert all("==" in ln for ln in lines) and not any("racl" in ln for ln in lines)
    found = subprocess.run([sys.executable, "-c", "import racl; print(racl.__file__)"], cwd=out, capture_output=True, text=True, timeout=120)
    assert found.returncode == 0 and Path(found.stdout.strip()).is_relative_to(out), found.stdout + found.stderr
    shown = app_help(out)
    assert shown.returncode == 0, shown.stderr[-3000:]


def test_assemble_refuses_to_overwrite_and_rejects_a_missing_model(assembled_space, tmp_path):
    script = [sys.executable, str(SPACE / "assemble.py")]
    busy = subprocess.run([*script, "--model", "user/racl", "--out", str(assembled_space)], capture_output=True, text=True)
    assert busy.returncode == 2 and "--overwrite" in busy.stderr
    missing = subprocess.run([*script, "--model", str(tmp_path / "no" / "such" / "model"), "--out", str(tmp_path / "o")], capture_output=True, text=True)
    assert missing.returncode == 2 and "no such model folder" in missing.stderr


def test_a_hub_id_is_written_into_the_space_config(space, tmp_path):
    assemble = space.assemble
    assert assemble.copy_model("someone/racl-xlsr", tmp_path) == "someone/racl-xlsr" and not (tmp_path / "model").exists()
    card = yaml.safe_load(assemble.space_card("someone/racl-xlsr", local_model=False).split("---\n")[1])
    assert card["models"] == ["someone/racl-xlsr"]
    wheel = Path("racl-0.1.0-py3-none-any.whl")
    line = assemble.wheel_line(wheel, "https://huggingface.co/spaces/u/s/resolve/main/")
    assert line == "racl[space] @ https://huggingface.co/spaces/u/s/resolve/main/racl-0.1.0-py3-none-any.whl"
    assert assemble.requirements_text(["torch==1"], line).splitlines()[-1] == line
    assert assemble.wheel_line(wheel) == "./racl-0.1.0-py3-none-any.whl[space]"


# ---------------------------------------------------------------------------------------------
# the running app: browser, load, memory


@pytest.fixture(scope="module")
def space_server(tiny_model_dir, tmp_path_factory):
    log = tmp_path_factory.mktemp("server") / "app.log"
    # 80 MB: room for a 30-minute 16-bit WAV (58 MB); the speech detector off: speech_like clips are not speech to it
    env = {"RACL_MAX_FILE_MB": "80", "RACL_BATCH_SIZE": "16", "RACL_VAD": "0"}
    with running_app([str(APP), "--model", str(tiny_model_dir)], log, env=env) as server:
        yield server


@pytest.fixture()
def browser_page():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (Debian package {CHROMIUM_PACKAGE})")
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright Python package is not installed")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser.new_page(viewport={"width": 1280, "height": 1000})
        finally:
            browser.close()


def open_and_upload(page, url: str, path: Path) -> None:
    page.goto(url, wait_until="domcontentloaded")
    page.wait_for_selector("#analyse-button", timeout=120_000)
    page.locator("#audio-input input[type=file]").set_input_files(str(path))
    # the upload is done once the player offers to download the uploaded copy
    page.wait_for_selector("#audio-input a[data-testid=download-link]", timeout=60_000)
    page.locator("#analyse-button").click()


def wait_for_answer(page, words: str, timeout_ms: int = 120_000) -> str:
    page.wait_for_function(
        "w => (document.querySelector('#verdict')?.innerText || '').includes(w)", arg=words, timeout=timeout_ms
    )
    return page.locator("#verdict").inner_text()


@pytest.mark.browser
def test_browser_upload_shows_verdict_probability_and_timeline(space_server, browser_page, tmp_path):
    page = browser_page
    open_and_upload(page, space_server.url, write_clip(tmp_path / "interview.wav", 10.0))
    text = wait_for_answer(page, "Verdict:")
    assert VERDICT.search(text) and PROBABILITY.search(text) and "higher = more bona fide" in text
    timeline = page.locator("#timeline img")
    timeline.wait_for(state="visible", timeout=60_000)
    page.wait_for_function("() => document.querySelector('#timeline img')?.naturalWidth > 0", timeout=60_000)
    box = timeline.bounding_box()
    assert box and box["width"] > 200 and box["height"] > 50
    assert page.locator("#spectrogram img").count() == 1
    label = page.locator("#probability").inner_text()
    assert "bona fide" in label and "%" in label
    page.screenshot(path=str(ARTIFACTS / "upload_verdict.png"), full_page=True)
    page.get_by_text("How to read this").click()
    page.get_by_text("Limitations (from the model card)").click()
    page.get_by_text("trust results on", exact=False).wait_for(timeout=30_000)  # the model card's own words
    assert page.get_by_text("higher = more bona fide", exact=False).count() >= 2
    page.screenshot(path=str(ARTIFACTS / "explanations.png"), full_page=True)


@pytest.mark.browser
def test_browser_corrupt_file_gets_a_friendly_message_not_an_error_toast(space_server, browser_page, tmp_path):
    page = browser_page
    corrupt = tmp_path / "broken.wav"
    corrupt.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00garbage" + bytes(range(256)) * 16)
    open_and_upload(page, space_server.url, corrupt)
    text = wait_for_answer(page, "Could not read this file")
    assert "broken.wav" in text
    page.wait_for_timeout(1000)  # a toast would have appeared by now
    assert page.locator(".toast-body").count() == 0
    page.screenshot(path=str(ARTIFACTS / "corrupt_message.png"), full_page=True)


def test_twenty_concurrent_requests_all_answered(space_server, tmp_path):
    from gradio_client import Client, handle_file

    clips = [write_clip(tmp_path / f"clip{i}.wav", 2.0 + (i % 4) * 1.5, seed=i) for i in range(20)]
    client = Client(space_server.url, verbose=False)
    started = time.monotonic()
    jobs = [client.submit(handle_file(str(c)), api_name="/analyse") for c in clips]
    results = [job.result(timeout=600) for job in jobs]
    elapsed = time.monotonic() - started
    for text, label, timeline, spectrogram in results:
        assert VERDICT.search(text), text
        assert label["label"] in ("bona fide", "spoof") and spectrogram
    long_ones = [r for c, r in zip(clips, results) if sf.info(str(c)).duration > 4.0]
    assert long_ones and all(r[2] for r in long_ones)  # a timeline for every clip longer than one window
    print(f"20 concurrent requests answered in {elapsed:.1f} s")


def test_upload_over_the_size_limit_is_refused(space_server, tmp_path):
    """gradio's max_file_size (80 MB here) refuses the upload itself, before anything is decoded."""
    from gradio_client import Client

    big = tmp_path / "huge.wav"
    with open(big, "wb") as f:
        f.truncate(81 * 1024 * 1024)
    client = Client(space_server.url, verbose=False)
    with pytest.raises(Exception, match=r"(?i)maximum allowed size|exceed"):
        predict(client, big)
    assert space_server.process.poll() is None


@pytest.mark.slow
def test_thirty_minute_recording_memory_stays_bounded(space_server, tmp_path):
    """30 min of 16 kHz float32 is 115 MB; decoding (about 2 copies) + windows in chunks + plots stay far below 1.5 GB.

    Peak RSS (VmHWM, reset just before the request) is measured, so a transient spike counts too.
    """
    from gradio_client import Client

    clip = speech_like(10.0, seed=7)
    path = tmp_path / "half_hour.wav"
    with sf.SoundFile(str(path), "w", SR, 1, subtype="PCM_16") as out:  # written in pieces: the test stays small too
        for _ in range(180):
            out.write(clip)
    client = Client(space_server.url, verbose=False)
    predict(client, write_clip(tmp_path / "warm.wav", 5.0))  # lazy imports and caches before measuring
    pid = space_server.process.pid
    before = rss_bytes(pid)
    peak_reset = reset_peak_rss(pid)
    started = time.monotonic()
    text, label, timeline, spectrogram = predict(client, path, timeout=1800)
    elapsed = time.monotonic() - started
    growth = (peak_rss_bytes(pid) if peak_reset else rss_bytes(pid)) - before
    print(f"30-minute file: {elapsed:.0f} s, RSS before {before / 2**20:.0f} MiB, growth {growth / 2**20:.0f} MiB ({'peak' if peak_reset else 'after'})")
    assert VERDICT.search(text) and "30:00" in text and timeline and spectrogram
    assert growth < 1.5 * 2**30


# ---------------------------------------------------------------------------------------------
# deployment: the assembled folder in a fresh virtual environment


@pytest.mark.slow
def test_assembled_space_runs_from_its_own_requirements(assembled_space, tmp_path):
    """A fresh venv + ``pip install -r requirements.txt`` (local wheels via pip's config) + ``python app.py``."""
    from gradio_client import Client

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    started = time.monotonic()
    install = subprocess.run([python, "-m", "pip", "install", "-q", "-r", "requirements.txt"], cwd=assembled_space, capture_output=True, text=True, timeout=1800)
    install_s = time.monotonic() - started
    assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]
    print(f"pip install -r requirements.txt into a fresh venv: {install_s:.0f} s")
    with running_app(["app.py"], tmp_path / "app.log", cwd=assembled_space, python=python) as server:
        with urllib.request.urlopen(server.url, timeout=30) as response:
            assert response.status == 200
        example = next((assembled_space / "examples").glob("*.ogg"))
        text = predict(Client(server.url, verbose=False), example)[0]
        assert VERDICT.search(text), text + server.log_tail()
    shutil.rmtree(venv, ignore_errors=True)  # gigabytes of torch: free them now, not at session end


def test_the_verdict_warns_when_the_recording_is_unlike_the_training_audio(space):
    from racl.scoring import ClipScore, WindowScore

    def result(familiar):
        return ClipScore(path="x.wav", score=-1.0, p_bonafide=0.2, label="spoof", duration=2.0, windows=[WindowScore(0.0, 2.0, -1.0)],
                         familiarity=None if familiar is None else 0.4, familiar=familiar)

    warned = space.verdict.verdict_markdown(result(False), 0.0, 4.0, 2.0)
    assert "unlike the audio the detector was trained on" in warned and "0.400" in warned
    for familiar in (True, None):  # a familiar recording, or a model without the check: no warning
        assert "unlike the audio" not in space.verdict.verdict_markdown(result(familiar), 0.0, 4.0, 2.0)
