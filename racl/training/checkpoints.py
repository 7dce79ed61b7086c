"""Checkpoints of a run: the loop state saved with Accelerate's, atomic saves, and what may be resumed.

``<output_dir>/checkpoints/step-N`` holds Accelerate's state (model, optimiser, scheduler, RNGs and
:class:`TrainState`); with the generators seeded by (seed, step, process), a resumed run continues
bit-exactly on CPU.
"""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import dataclass
from pathlib import Path

from .config import ConfigError, TrainConfig


@dataclass
class TrainState:
    """Loop state saved with Accelerate's checkpoints (``register_for_checkpointing``)."""

    step: int = 0
    best_metric: float = math.inf
    best_step: int = -1

    def state_dict(self):
        return {"step": self.step, "best_metric": self.best_metric, "best_step": self.best_step}

    def load_state_dict(self, state):
        self.step, self.best_metric, self.best_step = int(state["step"]), float(state["best_metric"]), int(state["best_step"])


def check_same_model(cfg: TrainConfig, out_dir: Path):
    """Refuse to resume a run whose checkpoints hold another model (its weights would not load, or load wrongly)."""
    saved = out_dir / "train_config.json"
    if not saved.exists():
        return
    before, now = json.loads(saved.read_text()).get("model", {}), cfg.to_dict()["model"]
    changed = sorted(k for k in before.keys() | now.keys() if before.get(k) != now.get(k))
    if changed:
        raise ConfigError(
            f"--resume: {out_dir} holds a run of another model (model.{', model.'.join(changed)} changed); "
            "set another training.output_dir or delete that folder to start afresh"
        )


def _checkpoints(out_dir: Path) -> list[Path]:
    return sorted((out_dir / "checkpoints").glob("step-*"), key=lambda p: int(p.name.split("-")[1]))


def latest_checkpoint(out_dir: Path) -> Path | None:
    ckpts = _checkpoints(out_dir)
    return ckpts[-1] if ckpts else None


def save_checkpoint(accelerator, out_dir: Path, step: int, keep: int):
    # Written under a temporary name and renamed, so a run killed mid-save never leaves a half checkpoint.
    target = out_dir / "checkpoints" / f"step-{step}"
    partial = out_dir / "checkpoints" / f"partial-step-{step}"
    accelerator.save_state(str(partial))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        shutil.rmtree(target, ignore_errors=True)
        partial.rename(target)
        for old in _checkpoints(out_dir)[:-keep] if keep > 0 else []:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()


__all__ = ["TrainState", "check_same_model", "latest_checkpoint", "save_checkpoint"]
