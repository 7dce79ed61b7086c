"""The training YAML, parsed strictly: an unknown key or a wrong type fails before training, naming the key.

Model hyper-parameters live in ``RACLConfig`` (a JSON file + ``model.overrides``); everything else
(data, augmentation, optimisation, logging) lives here. ``configs/*.yaml`` are instances.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml


class ConfigError(ValueError):
    """A training config that cannot be used; the message names the offending key."""


@dataclass
class ModelSection:
    config: str = "configs/model/tiny.json"  # RACLConfig JSON file (or a model folder to fine-tune)
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
    enh_scope: str = "batch"  # batch: all reconstructions are Lenh negatives; pair: only the anchor's own
    eval_every_steps: int = 50
    save_every_steps: int = 50
    log_every_steps: int = 10
    checkpoints_total_limit: int = 2
    selection_metric: str = "eer"  # eer (pooled validation EER) | eer_unseen (spoofs of attacks unseen in training)
    eval_batch_size: int = 8
    report_to: str = "tensorboard"  # an Accelerate tracker name, or "none"
    calibrate: bool = True  # fit p(bonafide) on validation scores of the best model
    evaluate_test: bool = True  # score the test split with the best model at the end


@dataclass
class TrainConfig:
    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    augment: dict = field(default_factory=dict)  # racl.augment.AugmentConfig keys
    training: TrainingSection = field(default_factory=TrainingSection)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


CHOICES = {
    "data.sampler": ("paired", "random"),
    "training.mixed_precision": ("no", "fp16", "bf16"),
    "training.enh_scope": ("batch", "pair"),
    "training.selection_metric": ("eer", "eer_unseen"),
}


def _coerce(key: str, value, expected):
    """Check ``value`` against a dataclass field type; ints are accepted for floats."""
    options = typing.get_args(expected) if isinstance(expected, types.UnionType) or typing.get_origin(expected) is typing.Union else (expected,)
    for option in options:
        if option is type(None) and value is None:
            return None
        if option is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if option is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if option in (str, bool, dict, list) and isinstance(value, option):
            return value
    names = " or ".join(getattr(o, "__name__", str(o)) for o in options)
    raise ConfigError(f"config key '{key}' must be {names}, got {type(value).__name__} {value!r}")


def _build(cls, values: dict, prefix: str):
    if not isinstance(values, dict):
        raise ConfigError(f"config section '{prefix.rstrip('.')}' must be a mapping, got {type(values).__name__}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"unknown config key '{prefix}{unknown[0]}' (known in this section: {', '.join(sorted(known))})")
    kwargs = {}
    for name, value in values.items():
        key = prefix + name
        if dataclasses.is_dataclass(hints[name]):
            kwargs[name] = _build(hints[name], value, key + ".")
        else:
            kwargs[name] = _coerce(key, value, hints[name])
            if key in CHOICES and kwargs[name] not in CHOICES[key]:
                raise ConfigError(f"config key '{key}' must be one of {CHOICES[key]}, got {value!r}")
    return cls(**kwargs)


def parse_overrides(pairs: list[str]) -> dict:
    """``["training.max_steps=10", "model.overrides.aggregation=gated"]`` → nested dict (values parsed as YAML)."""
    nested: dict = {}
    for pair in pairs:
        if "=" not in pair:
            raise ConfigError(f"override {pair!r} must look like section.key=value")
        dotted, raw = pair.split("=", 1)
        node = nested
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = yaml.safe_load(raw)
    return nested


def merge_mappings(base: dict, extra: dict) -> dict:
    """``base`` updated by ``extra``: mappings merge key by key, anything else (lists too) replaces."""
    out = dict(base)
    for k, v in extra.items():
        out[k] = merge_mappings(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def load_train_config(path: str | Path | None, overrides: list[str] | None = None) -> TrainConfig:
    raw = {}
    if path is not None:
        path = Path(path)
        if not path.exists():
            raise ConfigError(f"config file {path} does not exist")
        raw = yaml.safe_load(path.read_text()) or {}
    raw = merge_mappings(raw, parse_overrides(overrides or []))
    config = _build(TrainConfig, raw, "")
    if config.augment:
        from .augment import AugmentConfig

        try:
            AugmentConfig.from_dict(config.augment)
        except (TypeError, ValueError) as error:
            raise ConfigError(f"config section 'augment': {error}") from None
    return config
