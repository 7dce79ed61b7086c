"""What the paper's recipe costs on this machine's GPU, in one short command (random weights, nothing downloaded).

1. Training: XLS-R 300M + multi-layer aggregation + AASIST (configs/model/xlsr300m_aasist.json), bf16 autocast,
   the recipe's 64,600-sample crops, the feature encoder frozen, AdamW, the full RACL loss on batches of
   originals with their reconstructions: steps/s, samples/s and peak memory at batch 14 and at the largest batch
   that fits, and the projected hours for 100 epochs of ASVspoof 2019 LA train (25,380 clips plus the training
   reconstructions configs/data/asvspoof2019_la.yaml makes of them).
2. Scoring: real-time factor of full-length scoring (racl.scoring.Scorer, windows of the model config).
3. Diffusion reconstruction: seconds per audio second of the build's ``diffusion`` paradigm (AudioLDM SDEdit,
   strength 0.3, 50 DDIM steps) with random weights of AudioLDM-S's architecture (our transcription of
   cvssp/audioldm-s-full-v2's component configs).

Without a GPU (or with ``--tiny``) everything runs on tiny configs on the CPU: the same code path, so CI keeps it
working; those figures mean nothing.

    python -m benchmarks.gpu_check [--tiny] [--steps 10] [--max-batch 128] [--json results.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from modeling_racl import RACLConfig, RACLForAudioClassification
from racl.export import default_feature_extractor
from racl.labels import SAMPLING_RATE
from racl.scoring import Scorer

ROOT = Path(__file__).resolve().parents[1]
CROP = 64_600  # the paper's input length
LA_TRAIN_CLIPS = 25_380  # ASVspoof 2019 LA train: 2,580 bona fide + 22,800 spoof
EPOCHS = 100
# AudioLDM-S (cvssp/audioldm-s-full-v2): VAE, UNet and HiFi-GAN vocoder constructor arguments.
AUDIOLDM_S = {
    "vae": dict(in_channels=1, out_channels=1, latent_channels=8, block_out_channels=(128, 256, 512), layers_per_block=2,
                down_block_types=("DownEncoderBlock2D",) * 3, up_block_types=("UpDecoderBlock2D",) * 3, norm_num_groups=32),
    "unet": dict(sample_size=128, in_channels=8, out_channels=8, block_out_channels=(128, 256, 384, 640), layers_per_block=2,
                 down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
                 up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
                 cross_attention_dim=(128, 256, 384, 640), attention_head_dim=8, norm_num_groups=32,
                 class_embed_type="simple_projection", projection_class_embeddings_input_dim=512, class_embeddings_concat=True),
    "vocoder": dict(model_in_dim=64, sampling_rate=SAMPLING_RATE, upsample_initial_channel=1024, upsample_rates=[5, 4, 2, 2, 2],
                    upsample_kernel_sizes=[16, 16, 8, 4, 4], resblock_kernel_sizes=[3, 7, 11],
                    resblock_dilation_sizes=[[1, 3, 5]] * 3, normalize_before=False),
}
TINY_AUDIOLDM = {
    "vae": dict(in_channels=1, out_channels=1, latent_channels=4, block_out_channels=(8, 16), layers_per_block=1,
                down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2, norm_num_groups=4),
    "unet": dict(sample_size=16, in_channels=4, out_channels=4, block_out_channels=(8, 16), layers_per_block=1,
                 down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
                 cross_attention_dim=(8, 16), attention_head_dim=2, norm_num_groups=4,
                 class_embed_type="simple_projection", projection_class_embeddings_input_dim=8, class_embeddings_concat=True),
    "vocoder": dict(model_in_dim=64, sampling_rate=SAMPLING_RATE, upsample_initial_channel=16, upsample_rates=[10, 4, 4],
                    upsample_kernel_sizes=[20, 8, 8], resblock_kernel_sizes=[3], resblock_dilation_sizes=[[1, 3]], normalize_before=False),
}


def model_config(tiny: bool) -> RACLConfig:
    path = ROOT / "configs" / "model" / ("tiny.json" if tiny else "xlsr300m_aasist.json")
    values = json.loads(path.read_text())
    values.pop("model_type", None)
    return RACLConfig(**values)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def training_rows() -> int:
    """Rows of one epoch of the ASVspoof build's train split: each clip plus its training reconstructions."""
    from datasets_scripts.build_config import load_config

    config, _ = load_config(ROOT / "configs" / "data" / "asvspoof2019_la.yaml")
    held_out = set(config.splits.test_only_paradigms)
    per_clip = [p for p in config.paradigms if p.name not in held_out]
    # every paradigm of that config reconstructs both classes (tests/test_configs.py checks it)
    return LA_TRAIN_CLIPS * (1 + len(per_clip))


def train_batch(batch: int, crop: int, device: torch.device, rng: np.random.Generator) -> dict:
    """A batch shaped like the paired sampler's: originals (bona fide and spoof in turn), each followed by a
    reconstruction of it (spoof)."""
    rows = [(i % 2, False, i) if j == 0 else (1, True, i) for i in range((batch + 1) // 2) for j in range(2)][:batch]
    waves = torch.from_numpy(rng.standard_normal((batch, crop)).astype(np.float32) * 0.1)
    return {"input_values": waves.to(device), "attention_mask": torch.ones(batch, crop, dtype=torch.long, device=device),
            "labels": torch.tensor([r[0] for r in rows], device=device),
            "is_reconstructed": torch.tensor([r[1] for r in rows], device=device),
            "source_ids": torch.tensor([r[2] for r in rows], device=device)}


def time_training(model, batch: int, crop: int, steps: int, warmup: int, device: torch.device) -> dict:
    """Training steps at ``batch``; raises torch.OutOfMemoryError when it does not fit."""
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-6)
    rng = np.random.default_rng(0)
    inputs = train_batch(batch, crop, device, rng)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    for step in range(warmup + steps):
        if step == warmup:
            sync(device)
            start = time.perf_counter()
        with torch.autocast(device.type, dtype=dtype, enabled=device.type == "cuda"):
            loss = model(**inputs).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    sync(device)
    seconds = (time.perf_counter() - start) / steps
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    return {"batch": batch, "steps_per_s": 1 / seconds, "samples_per_s": batch / seconds, "peak_memory_gib": peak}


def largest_batch(model, start: int, limit: int, crop: int, device: torch.device) -> int:
    """Doubling from ``start``, then bisection, with one step per try: the largest batch that trains."""
    def fits(batch: int) -> bool:
        try:
            time_training(model, batch, crop, steps=1, warmup=0, device=device)
            return True
        except torch.OutOfMemoryError:
            return False
        finally:
            model.zero_grad(set_to_none=True)
            if device.type == "cuda":
                torch.cuda.empty_cache()

    good, bad = start, None
    while bad is None and good * 2 <= limit:
        if fits(good * 2):
            good *= 2
        else:
            bad = good * 2
    while bad is not None and bad - good > 1:
        mid = (good + bad) // 2
        good, bad = (mid, bad) if fits(mid) else (good, mid)
    return good


def check_training(tiny: bool, device: torch.device, batch: int, max_batch: int, steps: int, warmup: int) -> dict:
    torch.manual_seed(0)
    model = RACLForAudioClassification(model_config(tiny)).to(device).train()
    model.freeze_feature_encoder()  # as configs/asvspoof2019_la.yaml trains it
    results = {"at_batch": time_training(model, batch, CROP, steps, warmup, device)}
    top = largest_batch(model, batch, max_batch, CROP, device)
    results["largest_batch"] = time_training(model, top, CROP, steps, warmup, device) if top != batch else results["at_batch"]
    rows = training_rows()
    results["epoch_rows"] = rows
    for entry in (results["at_batch"], results["largest_batch"]):
        entry["hours_100_epochs"] = EPOCHS * rows / entry["samples_per_s"] / 3600
    del model
    return results


def check_scoring(tiny: bool, device: torch.device, clips: int, seconds: float) -> dict:
    torch.manual_seed(0)
    model = RACLForAudioClassification(model_config(tiny)).to(device).eval()
    scorer = Scorer(model, default_feature_extractor(model.config), batch_size=16)
    rng = np.random.default_rng(1)
    waves = [(0.1 * rng.standard_normal(int(seconds * SAMPLING_RATE))).astype(np.float32) for _ in range(clips)]
    scorer.score_waveforms(waves[:1])  # warm-up (kernels, allocator)
    sync(device)
    start = time.perf_counter()
    scorer.score_waveforms(waves)
    sync(device)
    elapsed = time.perf_counter() - start
    return {"clips": clips, "clip_seconds": seconds, "rtf": elapsed / (clips * seconds)}


def check_diffusion(tiny: bool, device: torch.device, clips: int, seconds: float, steps: int) -> dict:
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import SpeechT5HifiGan, SpeechT5HifiGanConfig

    from datasets_scripts.paradigms.diffusion import AudioLDMReconstructor

    sizes = TINY_AUDIOLDM if tiny else AUDIOLDM_S
    torch.manual_seed(0)
    dtype = torch.float16 if device.type == "cuda" else None
    components = {"vae": AutoencoderKL(**sizes["vae"]), "unet": UNet2DConditionModel(**sizes["unet"]),
                  "vocoder": SpeechT5HifiGan(SpeechT5HifiGanConfig(**sizes["vocoder"])),
                  "scheduler": DDIMScheduler(num_train_timesteps=1000, beta_start=0.0015, beta_end=0.0195,
                                             beta_schedule="scaled_linear", clip_sample=False, set_alpha_to_one=False)}
    if dtype is not None:  # as the build runs it on a GPU (torch_dtype=float16 for the VAE and UNet)
        components["vae"], components["unet"] = components["vae"].to(dtype), components["unet"].to(dtype)
    params = sum(p.numel() for name in ("vae", "unet", "vocoder") for p in components[name].parameters())
    recon = AudioLDMReconstructor(components=components, strength=0.3, steps=steps, device=str(device), batch_size=clips)
    rng = np.random.default_rng(2)
    waves = [(0.1 * rng.standard_normal(int(seconds * SAMPLING_RATE))).astype(np.float32) for _ in range(clips)]
    recon.reconstruct(waves[:1])  # warm-up
    sync(device)
    start = time.perf_counter()
    recon.reconstruct(waves)
    sync(device)
    elapsed = time.perf_counter() - start
    return {"parameters": params, "clips": clips, "clip_seconds": seconds, "ddim_steps": steps,
            "seconds_per_audio_second": elapsed / (clips * seconds)}


def markdown(results: dict) -> str:
    train, score, diff = results["training"], results["scoring"], results["diffusion"]
    lines = [f"{results['device']} ({'tiny configs' if results['tiny'] else 'full size'}), torch {results['torch']}", "",
             f"| training ({'bf16' if results['device'] != 'CPU' else 'float32'}, 64,600-sample crops) | batch | steps/s | samples/s | peak GiB | hours for 100 epochs |", "|---|---|---|---|---|---|"]
    for name, entry in (("batch of the recipe", train["at_batch"]), ("largest batch that fits", train["largest_batch"])):
        peak = "-" if entry["peak_memory_gib"] is None else f"{entry['peak_memory_gib']:.1f}"
        lines.append(f"| {name} | {entry['batch']} | {entry['steps_per_s']:.2f} | {entry['samples_per_s']:.1f} | {peak} | {entry['hours_100_epochs']:.1f} |")
    lines += ["", f"Epoch: {train['epoch_rows']:,} rows. Scoring RTF {score['rtf']:.4f} ({score['clips']} clips of {score['clip_seconds']:g} s). "
              f"Diffusion reconstruction ({diff['parameters'] / 1e6:.1f} M parameters, {diff['ddim_steps']} DDIM steps at strength 0.3): "
              f"{diff['seconds_per_audio_second']:.3f} s per audio second."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true", help="tiny configs (the default without a GPU)")
    parser.add_argument("--batch", type=int, default=14, help="the recipe's batch (configs/asvspoof2019_la.yaml)")
    parser.add_argument("--max-batch", type=int, help="stop the search for the largest batch here (default: 256 on a GPU, "
                        "2 x --batch on the CPU, where memory does not run out first)")
    parser.add_argument("--steps", type=int, default=10, help="timed training steps per batch size")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--diffusion-steps", type=int, default=50)
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    tiny = args.tiny or device.type == "cpu"
    max_batch = args.max_batch or (256 if device.type == "cuda" else 2 * args.batch)
    if tiny and device.type == "cpu":
        torch.set_num_threads(min(torch.get_num_threads(), 2))
    results = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU", "tiny": tiny, "torch": torch.__version__,
               "training": check_training(tiny, device, args.batch, max_batch, args.steps, args.warmup)}
    results["scoring"] = check_scoring(tiny, device, clips=2 if tiny else 32, seconds=4.0 if tiny else 10.0)
    results["diffusion"] = check_diffusion(tiny, device, clips=1 if tiny else 8, seconds=2.0 if tiny else 4.0,
                                           steps=min(args.diffusion_steps, 4) if tiny else args.diffusion_steps)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    print(markdown(results), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
