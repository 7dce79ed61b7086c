"""The model a training config asks for, and its optimiser parameter groups."""

from __future__ import annotations

from pathlib import Path

from modeling_racl import RACLConfig, RACLForAudioClassification

from ..config import read_model_config
from .config import ConfigError, TrainConfig


def build_model(cfg: TrainConfig) -> RACLForAudioClassification:
    """A fresh model from a RACLConfig JSON (+ ``model.overrides``), or a model folder to fine-tune."""
    source = Path(cfg.model.config)
    if source.is_dir():  # fine-tune an existing model folder
        # Overrides go through from_pretrained's config kwargs so that the loss and head are built with them.
        unknown = sorted(set(cfg.model.overrides) - set(RACLConfig.from_pretrained(source).to_dict()))
        if unknown:
            raise ConfigError(f"config key 'model.overrides': {source} has no config field {', '.join(unknown)}")
        return RACLForAudioClassification.from_pretrained(source, **cfg.model.overrides)
    if not source.exists():
        raise ConfigError(f"config key 'model.config': {source} does not exist")
    config_dict = {**read_model_config(source), **cfg.model.overrides}
    try:
        config = RACLConfig(**config_dict)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"config key 'model.overrides' / {source}: {error}") from None
    if cfg.model.init_backbone_from_pretrained:
        return RACLForAudioClassification.from_pretrained_backbone(config)
    return RACLForAudioClassification(config)


def param_groups(model: RACLForAudioClassification, cfg: TrainConfig) -> list[dict]:
    """Separate learning rates: the pretrained backbone moves slowly, the new head fast."""
    backbone = [p for p in model.backbone.parameters() if p.requires_grad]
    backbone_ids = {id(p) for p in model.backbone.parameters()}
    head = [p for p in model.parameters() if p.requires_grad and id(p) not in backbone_ids]
    groups = [{"params": head, "lr": cfg.training.lr_head}]
    if backbone:
        groups.append({"params": backbone, "lr": cfg.training.lr_backbone})
    return groups


__all__ = ["build_model", "param_groups"]
