"""The training YAML, parsed strictly: an unknown key or a wrong type fails before training, naming the key.

Model hyper-parameters live in ``RACLConfig`` (a JSON file + ``model.overrides``); everything else
(data, augmentation, optimisation, logging) lives here. ``configs/*.yaml`` are instances.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from ..config import ConfigError, build_dataclass, fail, load_mapping


@dataclass
class ModelSection:
    config: str = ""  # required: a RACLConfig JSON file (configs/model/), or a model folder to fine-tune
    overrides: dict = field(default_factory=dict)  # RACLConfig kwargs that replace the file's values
    init_backbone_from_pretrained: bool = False  # load config.backbone_name_or_path weights (e.g. XLS-R 300M)


@dataclass
class DataSection:
    path: str = ""  # a dataset folder written by datasets_scripts.build, or a Hub dataset id
    train_split: str = "train"
    validation_split: str = "validation"
    test_split: str | None = "test"
    crop_seconds: float = 4.0  # random training crops; validation and test are scored at full length
    sampler: str = "paired"  # paired: originals with their reconstructions, class-balanced; random: plain shuffle
    use_reconstructions: bool = True  # False: train on original clips only (ablation a)
    reconstructions: list | None = None  # keep only these paradigms' reconstructions in training (per-paradigm ablation)
    exclude_attacks: list | None = None  # leave these spoof systems out of training: their clips and every reconstruction of them
    num_workers: int = 0
    max_train_samples: int | None = None
    max_eval_samples: int | None = None


@dataclass
class TrainingSection:
    output_dir: str = "outputs/runs/tiny"
    seed: int = 0
    max_steps: int = 100
    per_device_batch_size: int = 8
    gradient_accumulation_steps: int = 1
    lr_backbone: float = 1e-5
    lr_head: float = 1e-4
    weight_decay: float = 1e-4
    warmup_steps: int = 0
    scheduler: str = "cosine"  # any transformers.get_scheduler name
    max_grad_norm: float = 1.0
    mixed_precision: str = "no"  # no | fp16 | bf16 (fp16 falls back to no on CPU)
    freeze_feature_encoder: bool = True
    freeze_backbone: bool = False
    trainable_backbone_layers: int | None = None  # train only the top N backbone layers (None: as the freeze flags say)
    cache_backbone_states: bool = False  # frozen backbone: its hidden states computed once (racl.training.cached_states)
    enh_scope: str = "batch"  # batch: all reconstructions are Lenh negatives; pair: only the anchor's own
    contrastive_batch: str = "global"  # global: Lstd/Lenh/Lreg over every process's batch (gathered); process: each its own
    eval_every_steps: int = 50
    save_every_steps: int = 50
    log_every_steps: int = 10
    checkpoints_total_limit: int = 2
    # eer (pooled validation EER) | eer_unseen (spoofs of attacks unseen in training) | last (the final step's model;
    # validation is still scored, logged and calibrates it)
    selection_metric: str = "eer"
    eval_batch_size: int = 8
    report_to: str = "tensorboard"  # an Accelerate tracker name, or "none"
    calibrate: bool = True  # fit p(bonafide) on validation scores of the best model
    evaluate_test: bool = True  # score the test split with the best model at the end

    @property
    def reported_metric(self) -> str:
        """The validation number reported for the kept model: the selection metric, or pooled EER when the last step is kept."""
        return "eer" if self.selection_metric == "last" else self.selection_metric


@dataclass
class TrainConfig:
    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    augment: dict = field(default_factory=dict)  # racl.training.augment.AugmentConfig keys
    training: TrainingSection = field(default_factory=TrainingSection)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


CHOICES = {
    "data.sampler": ("paired", "random"),
    "training.mixed_precision": ("no", "fp16", "bf16"),
    "training.enh_scope": ("batch", "pair"),
    "training.contrastive_batch": ("global", "process"),
    "training.selection_metric": ("eer", "eer_unseen", "last"),
}


def load_train_config(path: str | Path | None, overrides: list[str] | None = None) -> TrainConfig:
    """A training YAML (``extends:`` allowed) with dotted ``overrides`` on top, checked strictly."""
    raw, _ = load_mapping(path, overrides)
    config = build_dataclass(TrainConfig, raw, str(path or "config"), choices=CHOICES)
    if not config.model.config:  # no silent default model: a recipe names the model it trains
        fail(str(path or "config"), "model.config", "required: a model JSON of configs/model/, or a model folder to fine-tune")
    if config.augment:
        from .augment import AugmentConfig

        try:
            AugmentConfig.from_dict(config.augment)
        except (TypeError, ValueError) as error:
            raise ConfigError(f"config section 'augment': {error}") from None
    return config


__all__ = ["ConfigError", "TrainConfig", "load_train_config"]
