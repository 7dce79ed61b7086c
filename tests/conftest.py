"""Shared fixtures: a tiny random-initialised RACL model (the real classes, no download) and audio."""

import copy
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never touch the network
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
TINY_CONFIG = ROOT / "configs" / "model" / "tiny.json"
SR = 16_000


@pytest.fixture(scope="module")
def one_torch_thread():
    """One intra-op thread for a module (tiny models run faster on one thread than on two shared cores)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_config():
    from modeling_racl import RACLConfig

    return RACLConfig.from_json_file(str(TINY_CONFIG))


@pytest.fixture()
def tiny_model(tiny_config):
    import torch
    from modeling_racl import RACLForAudioClassification

    torch.manual_seed(0)
    return RACLForAudioClassification(copy.deepcopy(tiny_config))  # a test may change its model's config, not the one all tests share


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tiny_config):
    """A Hub-ready folder of a tiny model, exported once per session."""
    import torch
    from modeling_racl import RACLForAudioClassification
    from racl.export import export_model_folder

    torch.manual_seed(0)
    model = RACLForAudioClassification(tiny_config).eval()
    return export_model_folder(model, tmp_path_factory.mktemp("tiny-racl"))


def speech_like(seconds: float, seed: int = 0, sr: int = SR) -> np.ndarray:
    """A voiced, formant-filtered harmonic signal with a wandering pitch and pauses (no speech needed)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    f0 = 120 + 30 * np.sin(2 * np.pi * 0.7 * t + rng.uniform(0, 6))
    phase = 2 * np.pi * np.cumsum(f0) / sr
    wave = sum(np.sin(k * phase) / k for k in range(1, 20))
    envelope = (np.sin(2 * np.pi * 2.5 * t + rng.uniform(0, 6)) > -0.3).astype(float)
    wave = wave * envelope + 0.01 * rng.standard_normal(len(t))
    return (0.3 * wave / np.abs(wave).max()).astype(np.float32)


@pytest.fixture()
def write_wav(tmp_path):
    def _write(name, wave=None, sr=SR, seconds=1.0, seed=0, subtype=None):
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if wave is None:
            wave = speech_like(seconds, seed, sr)
        sf.write(str(path), wave, sr, subtype=subtype)
        return path

    return _write


def run_python(code: str, cwd=None, env=None, timeout=300):
    """Run ``code`` in a fresh Python process (what a user's new session sees)."""
    import subprocess

    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout)


def make_tiny_dataset(folder, clips_per_speaker: int = 4, seconds: float = 0.6, seed: int = 0):
    """A DatasetDict in the build's Parquet layout: bona fide speech-like clips, 'spoofs' with a buzz,
    and a reconstruction (a smoothed copy, labelled spoof) of every original, linked by source_id."""
    import datasets

    from datasets_scripts.schema import FEATURES

    rng = np.random.default_rng(seed)
    speakers = {"train": ["s1", "s2", "s3"], "validation": ["s4"], "test": ["s5"]}
    attacks = {"train": ["A01", "A02"], "validation": ["A01", "A03"], "test": ["A04"]}
    folder = Path(folder)
    for split, spk in speakers.items():
        rows = {k: [] for k in FEATURES}
        for s in spk:
            for k in range(clips_per_speaker):
                label = k % 2
                wave = speech_like(seconds, int(rng.integers(1 << 30)))
                if label:
                    t = np.arange(len(wave)) / SR
                    wave = (0.7 * wave + 0.1 * np.sin(2 * np.pi * (3000 + 500 * k) * t)).astype(np.float32)
                utt = f"{split}-{s}-{k}"
                attack = attacks[split][k // 2 % len(attacks[split])] if label else "-"
                smoothed = np.convolve(wave, np.ones(5) / 5, mode="same").astype(np.float32)
                for w, u, recon in ((wave, utt, "none"), (smoothed, f"{utt}__smooth", "smooth")):
                    rows["audio"].append({"array": w, "sampling_rate": SR})
                    rows["label"].append(1 if recon != "none" else label)
                    rows["utt_id"].append(u)
                    rows["source_id"].append(utt)
                    rows["is_reconstructed"].append(recon != "none")
                    rows["reconstruction"].append(recon)
                    rows["attack"].append(attack)
                    rows["speaker"].append(s)
                    rows["corpus"].append("tiny")
                    rows["duration"].append(len(w) / SR)
        (folder / "data").mkdir(parents=True, exist_ok=True)
        datasets.Dataset.from_dict(rows, features=FEATURES).to_parquet(str(folder / "data" / f"{split}-00000-of-00001.parquet"))
    return folder


@pytest.fixture(scope="session")
def tiny_dataset_dir(tmp_path_factory):
    return make_tiny_dataset(tmp_path_factory.mktemp("tiny-data"))


# ---------------------------------------------------------------- under CI, a skip is a failure
# The README's commands install every dependency the tests use, so where CI is set a skipped test
# means setup missed one. Only reasons starting with one of these may skip there: what those
# commands do not provide. Skip reasons elsewhere name the missing package or program.
CI_ALLOWED_SKIPS = ("no GPU", "no corpus root", "no Hub weights")


def _ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


def _fail_disallowed_skip(report) -> None:
    if not (_ci() and report.skipped) or hasattr(report, "wasxfail"):
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    reason = reason.removeprefix("Skipped: ")
    if not reason.startswith(CI_ALLOWED_SKIPS):
        report.outcome = "failed"
        report.longrepr = f"skipped where CI is set (allowed only: {', '.join(CI_ALLOWED_SKIPS)}): {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    _fail_disallowed_skip(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    _fail_disallowed_skip(outcome.get_result())  # a module-level skip or importorskip
