"""benchmarks/gpu_check.py on the CPU: tiny configs through the same code path as on a GPU, so the check keeps working."""

import json

from benchmarks import gpu_check


def test_gpu_check_runs_on_tiny_configs_on_the_cpu(tmp_path, capsys, one_torch_thread):
    out = tmp_path / "results.json"
    assert gpu_check.main(["--tiny", "--batch", "2", "--max-batch", "4", "--steps", "1", "--warmup", "0",
                           "--diffusion-steps", "2", "--json", str(out)]) == 0
    results = json.loads(out.read_text())
    train = results["training"]
    assert results["tiny"] and train["at_batch"]["batch"] == 2 and train["largest_batch"]["batch"] == 4  # no OOM on the CPU
    assert train["epoch_rows"] == 25_380 * 4  # each clip and its diffusion, HiFi-GAN and EnCodec reconstructions
    for entry in (train["at_batch"], train["largest_batch"]):
        assert entry["steps_per_s"] > 0 and entry["hours_100_epochs"] > 0
    assert results["scoring"]["rtf"] > 0 and results["diffusion"]["seconds_per_audio_second"] > 0
    assert "| largest batch that fits | 4 |" in capsys.readouterr().out


def test_the_full_size_diffusion_is_audioldm_s_sized():
    import torch
    from diffusers import UNet2DConditionModel

    with torch.device("meta"):
        unet = UNet2DConditionModel(**gpu_check.AUDIOLDM_S["unet"])
    assert 170e6 < sum(p.numel() for p in unet.parameters()) < 200e6  # AudioLDM-S's UNet: 181 M in its paper
