"""Train a RACL detector with Accelerate (in the style of Accelerate's ``*_no_trainer`` examples).

    accelerate launch train_racl.py --config configs/demo.yaml [section.key=value ...] [--resume latest]
    python train_racl.py --config configs/tiny.yaml --seeds 0 1 2        # several seeds, mean ± std

The dataset is a folder written by ``datasets_scripts.build`` (or a Hub id) with the columns of
DESIGN.md section 4. Batches keep originals with their reconstructions (``racl.sampler``); crops and
augmentation are drawn from generators seeded by (seed, step, process), so a run resumed from a
checkpoint with ``--resume`` continues bit-exactly on CPU. The best model (by validation EER, not
loss) is written as a Hub-ready folder to ``<output_dir>/best``.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import math
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from accelerate import Accelerator
from accelerate.utils import ProjectConfiguration, set_seed
from tqdm.auto import tqdm
from transformers import get_scheduler

from modeling_racl import RACLConfig, RACLForAudioClassification
from racl import SAMPLING_RATE
from racl.audio import to_mono_16k
from racl.augment import AugmentConfig, Augmenter
from racl.export import default_feature_extractor, export_model_folder
from racl.metrics import compute_eer, fit_calibration
from racl.sampler import PairedBatchSampler
from racl.scoring import Scorer
from racl.train_config import ConfigError, TrainConfig, load_train_config

logger = logging.getLogger("train_racl")
REQUIRED_COLUMNS = ("audio", "label", "utt_id", "source_id", "is_reconstructed", "reconstruction", "attack")


class NonFiniteLoss(FloatingPointError):
    pass


# ---------------------------------------------------------------- data


def load_splits(cfg: TrainConfig):
    """Load the dataset, check it can serve this config, and return (train, validation, test|None)."""
    import datasets

    path = cfg.data.path
    if not path:
        raise ConfigError("config key 'data.path' is empty: point it at a dataset folder or Hub id")
    try:
        if (Path(path) / "dataset_dict.json").exists():
            dsd = datasets.load_from_disk(path)
        else:
            dsd = datasets.load_dataset(path)
    except FileNotFoundError as error:
        raise ConfigError(f"cannot load dataset {path!r}: {error}") from None
    except ValueError as error:  # datasets refuses a split whose files hold no rows
        empty = str(error).split('"')[1] if "corresponds to no data" in str(error) else None
        raise ConfigError(f"dataset {path!r} split {empty!r} is empty" if empty else f"cannot load dataset {path!r}: {error}") from None
    out = []
    for key in ("train_split", "validation_split", "test_split"):
        name = getattr(cfg.data, key)
        if name is None:
            out.append(None)
            continue
        if name not in dsd:
            if key == "test_split":
                out.append(None)
                continue
            raise ConfigError(f"dataset {path!r} has no split {name!r} (config key 'data.{key}'); it has {sorted(dsd)}")
        split = dsd[name]
        missing = [c for c in REQUIRED_COLUMNS if c not in split.column_names]
        if missing:
            raise ConfigError(f"dataset {path!r} split {name!r} lacks column(s) {missing}")
        if len(split) == 0:
            raise ConfigError(f"dataset {path!r} split {name!r} is empty")
        out.append(split.cast_column("audio", datasets.Audio(decode=False)))  # decoded by us, in the loader
    train, validation, test = out
    if not cfg.data.use_reconstructions:
        train = train.filter(lambda r: not r, input_columns="is_reconstructed")
    elif cfg.data.reconstructions is not None:
        keep = {"none", *cfg.data.reconstructions}
        train = train.filter(lambda r: r in keep, input_columns="reconstruction")
    if cfg.data.max_train_samples:
        train = train.select(range(min(cfg.data.max_train_samples, len(train))))
    if cfg.data.max_eval_samples:
        validation = validation.select(range(min(cfg.data.max_eval_samples, len(validation))))
    if len(set(train["label"])) < 2:
        raise ConfigError(f"train split of {path!r} holds one class only; RACL needs bona fide and spoof clips")
    return train, validation, test


def decode(audio: dict) -> np.ndarray:
    """Audio column value (bytes or path, undecoded) → 16 kHz mono float32."""
    source = io.BytesIO(audio["bytes"]) if audio.get("bytes") else audio["path"]
    data, sr = sf.read(source, dtype="float32", always_2d=True)
    return to_mono_16k(data.T, sr)


class ClipDataset(torch.utils.data.Dataset):
    def __init__(self, split):
        self.split = split

    def __len__(self):
        return len(self.split)

    def __getitem__(self, i):
        row = self.split[int(i)]
        return {"wave": decode(row["audio"]), "label": row["label"], "is_reconstructed": row["is_reconstructed"], "source_id": row["source_id"], "utt_id": row["utt_id"]}


def collate(items: list[dict]) -> dict:
    sources = {s: k for k, s in enumerate(dict.fromkeys(it["source_id"] for it in items))}
    return {
        "waves": [it["wave"] for it in items],
        "labels": torch.tensor([it["label"] for it in items]),
        "is_reconstructed": torch.tensor([bool(it["is_reconstructed"]) for it in items]),
        "source_ids": torch.tensor([sources[it["source_id"]] for it in items]),
        "utt_ids": [it["utt_id"] for it in items],
    }


def crop_batch(waves: list[np.ndarray], source_ids: list[int], crop: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Random crops; clips of one source group share the offset so an original and its reconstruction stay aligned."""
    offsets: dict[int, float] = {}
    out = []
    for wave, sid in zip(waves, source_ids):
        if len(wave) <= crop:
            out.append(wave)
            continue
        fraction = offsets.setdefault(sid, rng.random())
        start = int(fraction * (len(wave) - crop))
        out.append(wave[start : start + crop])
    return out


# ---------------------------------------------------------------- model and optimiser


def build_model(cfg: TrainConfig) -> RACLForAudioClassification:
    source = Path(cfg.model.config)
    if source.is_dir():  # fine-tune an existing model folder
        model = RACLForAudioClassification.from_pretrained(source)
        for key, value in cfg.model.overrides.items():
            setattr(model.config, key, value)
        return model
    if not source.exists():
        raise ConfigError(f"config key 'model.config': {source} does not exist")
    config_dict = {**json.loads(source.read_text()), **cfg.model.overrides}
    try:
        config = RACLConfig(**{k: v for k, v in config_dict.items() if k != "model_type"})
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


# ---------------------------------------------------------------- validation


def validation_scores(model, extractor, split, batch_size: int, accelerator=None) -> dict:
    """Full-length scores of a split; with an accelerator the work is divided between processes and gathered."""
    scorer = Scorer(accelerator.unwrap_model(model) if accelerator else model, extractor, batch_size=batch_size)
    indices = list(range(len(split)))

    def score(mine):
        local = []
        for start in range(0, len(mine), 16):
            chunk = mine[start : start + 16]
            rows = split.select(chunk)
            results = scorer.score_waveforms([decode(a) for a in rows["audio"]], rows["utt_id"])
            local.extend(zip(chunk, (r.score for r in results)))
        return local

    if accelerator is None:
        by_index = dict(score(indices))
    else:
        with accelerator.split_between_processes(indices) as mine:
            local = score(mine)
        by_index = dict(accelerator.gather_for_metrics(local, use_gather_object=True))
    order = sorted(by_index)
    return {"index": order, "score": np.array([by_index[i] for i in order]), "label": np.array(split.select(order)["label"]), "attack": split.select(order)["attack"]}


def selection_value(scores: dict, metric: str, train_attacks: set[str]) -> dict:
    eer, threshold = compute_eer(scores["score"], scores["label"])
    result = {"eer": eer, "threshold": threshold}
    unseen = np.array([lab == 0 or att not in train_attacks for lab, att in zip(scores["label"], scores["attack"])])
    if metric == "eer_unseen":
        # train() checked that validation holds unseen spoofs; max_eval_samples may still leave none
        has_unseen = (scores["label"][unseen] == 1).any()
        result["eer_unseen"] = compute_eer(scores["score"][unseen], scores["label"][unseen])[0] if has_unseen else eer
    return result


# ---------------------------------------------------------------- the loop


def train(cfg: TrainConfig, resume: str | None = None) -> dict:
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

    train_split, val_split, test_split = load_splits(cfg)
    model = build_model(cfg)
    if model.config.racl_beta > 0 and not any(train_split["is_reconstructed"]):
        raise ConfigError(
            f"the train split has no reconstructed rows but racl_beta={model.config.racl_beta}: "
            "build reconstructions into the dataset or set model.overrides.racl_beta=0"
        )
    if cfg.training.freeze_feature_encoder:
        model.freeze_feature_encoder()
    if cfg.training.freeze_backbone:
        model.freeze_backbone()
    extractor = default_feature_extractor()
    augmenter = Augmenter(AugmentConfig.from_dict(cfg.augment)) if cfg.augment else None
    train_attacks = set(train_split["attack"]) - {"-"}
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
    loader = torch.utils.data.DataLoader(ClipDataset(train_split), batch_sampler=sampler, collate_fn=collate, num_workers=cfg.data.num_workers)
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
            waves = crop_batch(batch["waves"], batch["source_ids"].tolist(), crop, rng)
            if augmenter is not None:
                waves = [augmenter(w, rng) for w in waves]
            inputs = extractor(waves, sampling_rate=SAMPLING_RATE, padding=True, return_attention_mask=True, return_tensors="pt")
            with accelerator.accumulate(model):
                out = model(
                    inputs["input_values"].to(accelerator.device), attention_mask=inputs["attention_mask"].to(accelerator.device),
                    labels=batch["labels"], is_reconstructed=batch["is_reconstructed"],
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
                evaluate_and_keep_best(accelerator, model, extractor, val_split, cfg, state, train_attacks)
                model.train()
            if state.step % cfg.training.save_every_steps == 0 or state.step == cfg.training.max_steps:
                save_checkpoint(accelerator, out_dir, state.step, cfg.training.checkpoints_total_limit)
            if state.step >= cfg.training.max_steps:
                break
    bar.close()
    summary = finish(accelerator, cfg, state, val_split, test_split, train_attacks)
    accelerator.end_training()
    return summary


def flatten(d: dict, prefix: str = "") -> dict:
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


def evaluate_and_keep_best(accelerator, model, extractor, val_split, cfg, state, train_attacks):
    model.eval()
    scores = validation_scores(model, extractor, val_split, cfg.training.eval_batch_size, accelerator)
    result = selection_value(scores, cfg.training.selection_metric, train_attacks)
    accelerator.log({f"validation/{k}": v for k, v in result.items()}, step=state.step)
    metric = result[cfg.training.selection_metric]
    logger.info("step %d: validation %s", state.step, {k: round(v, 4) for k, v in result.items()})
    if metric < state.best_metric:
        state.best_metric, state.best_step = metric, state.step
        if accelerator.is_main_process:
            best = Path(cfg.training.output_dir) / "best"
            export_model_folder(accelerator.unwrap_model(model), best, extractor, results={"validation": {"eer": result["eer"]}})
            (best / "validation_scores.json").write_text(json.dumps({"step": state.step, **result, "selection_metric": cfg.training.selection_metric}, indent=2))
    accelerator.wait_for_everyone()


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


def latest_checkpoint(out_dir: Path) -> Path | None:
    ckpts = sorted((out_dir / "checkpoints").glob("step-*"), key=lambda p: int(p.name.split("-")[1]))
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
        ckpts = sorted((out_dir / "checkpoints").glob("step-*"), key=lambda p: int(p.name.split("-")[1]))
        for old in ckpts[:-keep] if keep > 0 else []:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()


def finish(accelerator, cfg, state, val_split, test_split, train_attacks) -> dict:
    """Calibrate the best model on validation scores and evaluate it on the test split."""
    best = Path(cfg.training.output_dir) / "best"
    summary = {"best_step": state.best_step, f"validation_{cfg.training.selection_metric}": state.best_metric}
    if not accelerator.is_main_process or not best.exists():
        accelerator.wait_for_everyone()
        return summary
    model = RACLForAudioClassification.from_pretrained(best).to(accelerator.device).eval()
    extractor = default_feature_extractor()
    if cfg.training.calibrate:
        scores = validation_scores(model, extractor, val_split, cfg.training.eval_batch_size)  # main process only
        scale, bias = fit_calibration(scores["score"], scores["label"])
        if scale > 0:
            model.config.calibration_scale, model.config.calibration_bias = float(scale), float(bias)
        else:  # a model below chance on validation: an inverted probability would mislead, keep the softmax
            logger.warning("calibration skipped: validation scores are anti-correlated with the labels (scale %.3g)", scale)
        summary["calibration"] = {"scale": model.config.calibration_scale, "bias": model.config.calibration_bias}
    results = {"validation": {"eer": json.loads((best / "validation_scores.json").read_text())["eer"]}}
    if cfg.training.evaluate_test and test_split is not None:
        results["test"] = evaluate_test(model, extractor, test_split, cfg, train_attacks, best)
        summary["test"] = results["test"]
    export_model_folder(model, best, extractor, results=results)
    (Path(cfg.training.output_dir) / "summary.json").write_text(json.dumps(summary, indent=2))
    accelerator.wait_for_everyone()
    return summary


def evaluate_test(model, extractor, test_split, cfg, train_attacks, best: Path) -> dict:
    from racl.evaluation import run_split_evaluation

    return run_split_evaluation(model, extractor, test_split, out_dir=Path(cfg.training.output_dir) / "test_report", seen_attacks=train_attacks)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="training YAML (configs/*.yaml)")
    parser.add_argument("--resume", help="'latest' or a checkpoint folder under <output_dir>/checkpoints")
    parser.add_argument("--seeds", type=int, nargs="+", help="train once per seed (output_dir/seed-N) and report mean ± std")
    parser.add_argument("overrides", nargs="*", help="section.key=value overrides, e.g. training.max_steps=20")
    args = parser.parse_args(argv)
    try:
        cfg = load_train_config(args.config, args.overrides)
        if args.seeds:
            print(json.dumps(multi_seed(cfg, args.seeds), indent=2))
        else:
            print(json.dumps(train(cfg, resume=args.resume), indent=2, default=float))
    except ConfigError as error:
        print(f"train_racl: {error}", file=sys.stderr)
        return 2
    except NonFiniteLoss as error:
        print(f"train_racl: {error}; the last good checkpoint is kept under {cfg.training.output_dir}/checkpoints", file=sys.stderr)
        return 3
    return 0


def multi_seed(cfg: TrainConfig, seeds: list[int]) -> dict:
    """Train once per seed; mean ± std of the selection metric (and test EER when evaluated)."""
    import copy

    base = Path(cfg.training.output_dir)
    runs = {}
    for seed in seeds:
        run = copy.deepcopy(cfg)
        run.training.seed, run.training.output_dir = seed, str(base / f"seed-{seed}")
        runs[seed] = train(run)
    report = {"seeds": seeds, "runs": runs}
    for key in (f"validation_{cfg.training.selection_metric}",):
        values = [r.get(key, r.get("validation_eer")) for r in runs.values()]  # a run may fall back to pooled EER
        report[key] = {"mean": float(np.mean(values)), "std": float(np.std(values))}
    tests = [r["test"]["eer"] for r in runs.values() if "test" in r]
    if len(tests) == len(seeds):
        report["test_eer"] = {"mean": float(np.mean(tests)), "std": float(np.std(tests))}
    base.mkdir(parents=True, exist_ok=True)
    (base / "multi_seed.json").write_text(json.dumps(report, indent=2, default=float))
    return report


if __name__ == "__main__":
    sys.exit(main())
