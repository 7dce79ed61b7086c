"""The training loop (in the style of Accelerate's ``*_no_trainer`` examples), and what ends a run.

Crops and augmentation are drawn from generators seeded by (seed, step, micro-batch, process), so a
run resumed from a checkpoint continues bit-exactly on CPU. At the end the best model is calibrated
on the validation split and evaluated on the test split (:func:`finish`).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import ProjectConfiguration, set_seed
from tqdm.auto import tqdm
from transformers import get_scheduler

from modeling_racl import RACLForAudioClassification

from ..evaluation.calibration import fit_calibration
from ..evaluation.familiarity import fit_familiarity
from ..evaluation.report import run_split_evaluation
from ..export import default_feature_extractor, export_model_folder
from ..labels import NO_ATTACK, SAMPLING_RATE
from .augment import AugmentConfig, Augmenter
from .checkpoints import TrainState, check_same_model, latest_checkpoint, save_checkpoint
from .config import ConfigError, TrainConfig
from .cached_states import CachedStatesDataset, CachedWindows, cache_states, crop_and_pad, crop_frames
from .data import ClipDataset, collate, crop_batch, load_splits, training_rows
from .model import build_model, param_groups
from .sampler import PairedBatchSampler
from .validation import evaluate_and_keep_best, validation_scores

logger = logging.getLogger(__name__)


class NonFiniteLoss(FloatingPointError):
    pass


def train(cfg: TrainConfig, resume: str | None = None) -> dict:
    """One training run of ``cfg``; ``resume`` is ``"latest"`` or a checkpoint folder. Returns the run's summary."""
    out_dir = Path(cfg.training.output_dir)
    if resume:
        check_same_model(cfg, out_dir)  # before loading any data or model: a wrong folder fails at once
    mixed = cfg.training.mixed_precision
    if mixed == "fp16" and not torch.cuda.is_available():
        mixed = "no"  # fp16 autocast needs a GPU
    accelerator = Accelerator(
        gradient_accumulation_steps=cfg.training.gradient_accumulation_steps,
        mixed_precision=mixed,
        log_with=None if cfg.training.report_to == "none" else cfg.training.report_to,
        project_config=ProjectConfiguration(project_dir=str(out_dir), automatic_checkpoint_naming=False),
    )
    set_seed(cfg.training.seed, device_specific=False)
    logging.basicConfig(level=logging.INFO if accelerator.is_main_process else logging.WARNING, format="%(asctime)s %(name)s: %(message)s")

    whole_train, val_split, test_split = load_splits(cfg)
    train_split = training_rows(whole_train, cfg)
    model = build_model(cfg)
    model.loss_fn.global_batch = cfg.training.contrastive_batch == "global"  # only acts with several processes
    if model.config.racl_beta > 0 and not any(train_split["is_reconstructed"]):
        raise ConfigError(
            f"the train split has no reconstructed rows but racl_beta={model.config.racl_beta}: "
            "build reconstructions into the dataset or set model.overrides.racl_beta=0"
        )
    if cfg.training.freeze_feature_encoder:
        model.freeze_feature_encoder()
    if cfg.training.freeze_backbone:
        model.freeze_backbone()
    if cfg.training.trainable_backbone_layers is not None:
        try:
            model.freeze_backbone_layers(cfg.training.trainable_backbone_layers)
        except ValueError as error:
            raise ConfigError(f"config key 'training.trainable_backbone_layers': {error}") from None
    extractor = default_feature_extractor(model.config)  # Whisper reads raw waveforms, the SSL encoders normalised ones
    augmenter = Augmenter(AugmentConfig.from_dict(cfg.augment)) if cfg.augment else None
    train_attacks = set(train_split["attack"]) - {NO_ATTACK}
    if cfg.training.selection_metric == "eer_unseen" and not any(
        label == 1 and attack not in train_attacks for label, attack in zip(val_split["label"], val_split["attack"])
    ):
        # Decided before training, not at the first evaluation: a small validation split may hold no unseen system.
        logger.warning("validation has no spoofs of attacks unseen in training: selecting the best model on pooled EER instead")
        cfg.training.selection_metric = "eer"

    sampler = PairedBatchSampler(
        train_split["source_id"], train_split["label"], train_split["is_reconstructed"], cfg.training.per_device_batch_size,
        seed=cfg.training.seed, paired=cfg.data.sampler == "paired",
    )
    cached = cfg.training.cache_backbone_states
    val_windows = None
    if cached:
        check_cacheable(cfg, model)
        with accelerator.main_process_first():  # one process writes the cache, the others then read it
            # The whole split is cached, so other selections of it reuse the cache; a size limit caches only what it keeps.
            source = train_split if cfg.data.max_train_samples else whole_train
            states = training_rows(cache_states(source, model.to(accelerator.device), extractor, cfg.training.eval_batch_size), cfg)
            val_windows = CachedWindows(val_split, model, extractor, cfg.training.eval_batch_size)
        if states["utt_id"] != train_split["utt_id"]:  # the sampler indexes train_split's rows
            raise RuntimeError("the cached hidden states are out of step with the training rows")
        train_items = CachedStatesDataset(states)
        state_crop = crop_frames(model, int(cfg.data.crop_seconds * SAMPLING_RATE))  # before prepare() wraps the model
    loader = torch.utils.data.DataLoader(
        train_items if cached else ClipDataset(train_split), batch_sampler=sampler, collate_fn=collate, num_workers=cfg.data.num_workers)
    optimizer = torch.optim.AdamW(param_groups(model, cfg), weight_decay=cfg.training.weight_decay)
    scheduler = get_scheduler(
        cfg.training.scheduler, optimizer, num_warmup_steps=cfg.training.warmup_steps * accelerator.num_processes,
        num_training_steps=cfg.training.max_steps * accelerator.num_processes,
    )
    model, optimizer, loader, scheduler = accelerator.prepare(model, optimizer, loader, scheduler)
    state = TrainState()
    accelerator.register_for_checkpointing(state)

    if resume:
        ckpt = latest_checkpoint(out_dir) if resume == "latest" else Path(resume)
        if ckpt is None:
            raise ConfigError(f"--resume latest: no checkpoint under {out_dir / 'checkpoints'}")
        accelerator.load_state(str(ckpt))
        logger.info("resumed from %s at step %d", ckpt, state.step)
    if accelerator.is_main_process:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "train_config.json").write_text(json.dumps(cfg.to_dict(), indent=2))
    if cfg.training.report_to != "none":
        accelerator.init_trackers("racl", config=flatten(cfg.to_dict()))

    crop = int(cfg.data.crop_seconds * SAMPLING_RATE)
    steps_per_epoch = max(len(loader) // cfg.training.gradient_accumulation_steps, 1)
    bar = tqdm(total=cfg.training.max_steps, initial=state.step, disable=not accelerator.is_local_main_process, desc="train")
    model.train()
    while state.step < cfg.training.max_steps:
        epoch, done_in_epoch = divmod(state.step, steps_per_epoch)
        sampler.use_epoch(epoch)
        batches = accelerator.skip_first_batches(loader, done_in_epoch * cfg.training.gradient_accumulation_steps) if done_in_epoch else loader
        micro = 0
        for batch in batches:
            micro += 1
            rng = np.random.default_rng([cfg.training.seed, state.step, micro, accelerator.process_index])
            if cached:
                cropped = crop_and_pad(batch["waves"], batch["source_ids"].tolist(), state_crop, rng, batch.get("spectral"))
                inputs = {name: tensor.to(accelerator.device) for name, tensor in cropped.items()}
            else:
                waves = crop_batch(batch["waves"], batch["source_ids"].tolist(), crop, rng)
                if augmenter is not None:
                    waves = [augmenter(w, rng) for w in waves]
                features = extractor(waves, sampling_rate=SAMPLING_RATE, padding=True, return_attention_mask=True, return_tensors="pt")
                inputs = {"input_values": features["input_values"].to(accelerator.device),
                          "attention_mask": features["attention_mask"].to(accelerator.device)}
            with accelerator.accumulate(model):
                out = model(
                    **inputs, labels=batch["labels"], is_reconstructed=batch["is_reconstructed"],
                    source_ids=batch["source_ids"] if cfg.training.enh_scope == "pair" else None,
                )
                if not torch.isfinite(out.loss):
                    raise NonFiniteLoss(f"non-finite loss {out.loss.item()} at step {state.step}; batch utt_ids: {batch['utt_ids']}")
                accelerator.backward(out.loss)
                if accelerator.sync_gradients and cfg.training.max_grad_norm:
                    accelerator.clip_grad_norm_(model.parameters(), cfg.training.max_grad_norm)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
            if not accelerator.sync_gradients:
                continue
            micro = 0
            state.step += 1
            bar.update(1)
            if state.step % cfg.training.log_every_steps == 0 or state.step == cfg.training.max_steps:
                log_terms(accelerator, out, scheduler, state.step, bar)
            if state.step % cfg.training.eval_every_steps == 0 or state.step == cfg.training.max_steps:
                evaluate_and_keep_best(accelerator, model, extractor, val_split, cfg, state, train_attacks, val_windows)
                model.train()
            if state.step % cfg.training.save_every_steps == 0 or state.step == cfg.training.max_steps:
                save_checkpoint(accelerator, out_dir, state.step, cfg.training.checkpoints_total_limit)
            if state.step >= cfg.training.max_steps:
                break
    bar.close()
    summary = finish(accelerator, cfg, state, val_split, test_split, train_attacks, train_split)
    accelerator.end_training()
    return summary


def check_cacheable(cfg: TrainConfig, model) -> None:
    """Cached hidden states need a backbone that does not train and clips that are not augmented."""
    frozen = cfg.training.freeze_backbone or cfg.training.trainable_backbone_layers == 0
    if model.aggregation is None or not frozen:
        raise ConfigError("config key 'training.cache_backbone_states' needs a pretrained backbone that stays frozen: "
                          "set training.freeze_backbone=true (or training.trainable_backbone_layers=0)")
    augment = AugmentConfig.from_dict(cfg.augment) if cfg.augment else None
    if augment is not None and any((augment.rir_prob, augment.noise_prob, augment.rawboost_prob)):
        raise ConfigError("config key 'training.cache_backbone_states': waveform augmentation cannot apply to cached "
                          "hidden states; set the augment section's probabilities to 0 or remove it")


def flatten(d: dict, prefix: str = "") -> dict:
    """Nested config → ``{"section.key": scalar}``, as trackers take hyper-parameters."""
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[prefix + k] = v if isinstance(v, (int, float, str, bool)) else str(v)
    return out


def log_terms(accelerator, out, scheduler, step, bar):
    terms = {f"loss/{k}": float(getattr(out, f"loss_{k}" if k != "total" else "loss").detach()) for k in ("total", "cls", "std", "enh", "reg")}
    lrs = scheduler.get_last_lr()
    terms.update({"lr/head": lrs[0], **({"lr/backbone": lrs[1]} if len(lrs) > 1 else {})})
    accelerator.log(terms, step=step)
    bar.set_postfix(loss=f"{terms['loss/total']:.3f}")


def finish(accelerator, cfg, state, val_split, test_split, train_attacks, train_split=None) -> dict:
    """Calibrate the best model on validation scores, fit its familiarity check on the training clips when the model
    config names a layer for it, and evaluate it on the test split."""
    best = Path(cfg.training.output_dir) / "best"
    summary = {"best_step": state.best_step, f"validation_{cfg.training.reported_metric}": state.best_metric}
    if not accelerator.is_main_process or not best.exists():
        accelerator.wait_for_everyone()
        return summary
    model = RACLForAudioClassification.from_pretrained(best).to(accelerator.device).eval()
    extractor = default_feature_extractor(model.config)
    if cfg.training.calibrate:
        scores = validation_scores(model, extractor, val_split, cfg.training.eval_batch_size)  # main process only
        scale, bias = fit_calibration(scores["score"], scores["label"])
        if scale > 0:
            model.config.calibration_scale, model.config.calibration_bias = float(scale), float(bias)
        else:  # a model below chance on validation: an inverted probability would mislead, keep the softmax
            logger.warning("calibration skipped: validation scores are anti-correlated with the labels (scale %.3g)", scale)
        summary["calibration"] = {"scale": model.config.calibration_scale, "bias": model.config.calibration_bias}
    if model.config.familiarity_layer is not None and train_split is not None:
        summary["familiarity"] = fit_familiarity(model, extractor, train_split, batch_size=cfg.training.eval_batch_size)
        logger.info("familiarity check: %s", summary["familiarity"])
    results = {"validation": {"eer": json.loads((best / "validation_scores.json").read_text())["eer"]}}
    if cfg.training.evaluate_test and test_split is not None:
        results["test"] = run_split_evaluation(model, extractor, test_split, out_dir=Path(cfg.training.output_dir) / "test_report", seen_attacks=train_attacks)
        summary["test"] = results["test"]
    export_model_folder(model, best, extractor, results=results)
    (Path(cfg.training.output_dir) / "summary.json").write_text(json.dumps(summary, indent=2))
    accelerator.wait_for_everyone()
    return summary


__all__ = ["NonFiniteLoss", "train", "finish"]
