"""Shared fixtures: a tiny random-initialised RACL model (the real classes, no download) and audio."""

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


@pytest.fixture(scope="session")
def tiny_config():
    from modeling_racl import RACLConfig

    return RACLConfig.from_json_file(str(TINY_CONFIG))


@pytest.fixture()
def tiny_model(tiny_config):
    import torch
    from modeling_racl import RACLForAudioClassification

    torch.manual_seed(0)
    return RACLForAudioClassification(tiny_config)


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
