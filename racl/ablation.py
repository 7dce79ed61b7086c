"""The paper's ablation in miniature, on the demo dataset (may take hours; run once, results into docs/ablation.md).

Variants, each trained with several seeds and scored on the held-out test split (mean ± std EER):
  (a) CE on original clips only            (b) CE with reconstructions as spoof
  (c) + Lstd                               (d) + Lenh                 (e) full RACL (+ Lreg)
and (e) per reconstruction paradigm (training keeps only that paradigm's reconstructions). Each variant is
defined once, by ``configs/ablation/<key>.yaml`` (which extends the paper's ASVspoof 2019 LA recipe): its own
keys, not the recipe it extends, are applied to the recipe given here.

Runs go seed by seed (every variant with seed 0, then seed 1, ...), so an interrupted ablation still
compares all variants. Each finished run leaves ``<out>/<variant>/seed-N/summary.json`` and is skipped
when the command is run again; an interrupted run resumes from its last checkpoint (bit-exact on CPU);
``ablation.md``/``ablation.json`` are rewritten after every run (``--tables-only`` just rewrites them).

The default recipe is ``configs/ablation.yaml`` (AASIST's sinc front-end, 500 steps), kept apart so that
finished ablation runs stay valid whatever the demo's recipe becomes; ``--config configs/demo.yaml --out
outputs/ablation-filterbank`` runs the same variants on the demo's filterbank recipe; ``--data`` trains and
tests on another build, e.g. the demo's with HiFi-GAN copy-synthesis added (``configs/data/demo_hifigan.yaml``).

    python -m racl.ablation [--config configs/ablation.yaml] [--data DIR] [--seeds 0 1 2] [--paradigms diffusion world]
                            [--set model.overrides.racl_cls_weight=1.0 ...] [--out outputs/ablation]
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import subprocess
import sys
from pathlib import Path

from .config import load_yaml
from .training.seeds import run_seeds, seed_dir

ROOT = Path(__file__).resolve().parents[1]
VARIANT_DIR = ROOT / "configs" / "ablation"
LABELS = {"a": "CE, originals only", "b": "CE, reconstructions as spoof", "c": "+ Lstd", "d": "+ Lenh", "e": "full RACL (+ Lreg)"}


def dotted(mapping: dict, prefix: str = "") -> list[str]:
    """``{"model": {"overrides": {"racl_beta": 0}}}`` → ``["model.overrides.racl_beta=0"]`` (values as JSON, which YAML reads)."""
    out = []
    for key, value in mapping.items():
        out += dotted(value, f"{prefix}{key}.") if isinstance(value, dict) else [f"{prefix}{key}={json.dumps(value)}"]
    return out


def variant_overrides(key: str) -> list[str]:
    """What variant ``key`` changes: its file's own keys as overrides, without the recipe it extends or its output folder."""
    raw = load_yaml((VARIANT_DIR / f"{key}.yaml").read_text(encoding="utf-8"))
    raw.pop("extends", None)
    raw.get("training", {}).pop("output_dir", None)
    return dotted(raw)


VARIANTS = {key: (label, variant_overrides(key)) for key, label in LABELS.items()}
FULL_RACL = VARIANTS["e"][1]
# Numbers reported per variant: test EER pooled, on original spoofs only, and on unseen systems (the headline);
# then one EER per reconstruction paradigm of the test split, keyed RECONSTRUCTION + paradigm.
METRICS = {"pooled": ("eer",), "originals": ("originals", "eer"), "unseen": ("unseen", "eer")}
RECONSTRUCTION = "reconstruction:"


def all_runs(paradigms: list[str]) -> dict[str, tuple[str, list[str]]]:
    runs = dict(VARIANTS)
    for paradigm in paradigms:
        runs[f"e-{paradigm}"] = (f"full RACL, {paradigm} reconstructions only", [*FULL_RACL, f"data.reconstructions=[{paradigm}]"])
    return runs


def train_one(config: str, overrides: list[str], seed: int, out: Path, data: str | None = None, extra: list[str] = ()) -> None:
    """Train + test one (variant, seed) into ``out`` in its own process (a failed run does not stop the ablation)."""
    cmd = [sys.executable, "-m", "racl.training", "--config", config, f"training.seed={seed}",
           f"training.output_dir={out}", "training.report_to=none", *overrides, *extra]
    if data:
        cmd.append(f"data.path={data}")
    if any((out / "checkpoints").glob("step-*")):  # an interrupted run: go on from where it stopped
        cmd += ["--resume", "latest"]
    if subprocess.run(cmd, cwd=ROOT).returncode != 0:
        print(f"ablation: {out} failed (see its output above); going on", file=sys.stderr)


def _metric(test: dict, path: tuple[str, ...]) -> float | None:
    value = test
    for part in path:
        value = value.get(part) if isinstance(value, dict) else None
    return value


def collect(out: Path, runs: dict, seeds: list[int]) -> dict:
    """Per variant: the finished seeds and mean ± std of each metric over them."""
    results = {}
    for key, (label, _) in runs.items():
        tests = {}
        for seed in seeds:
            path = seed_dir(out / key, seed) / "summary.json"
            if path.exists() and (test := json.loads(path.read_text()).get("test")):
                tests[seed] = test
        entry = {"label": label, "seeds_done": sorted(tests)}
        paradigms = sorted({name for t in tests.values() for name in t.get("per_reconstruction", {})})
        metrics = {**METRICS, **{f"{RECONSTRUCTION}{name}": ("per_reconstruction", name, "eer") for name in paradigms}}
        for name, metric_path in metrics.items():
            values = [v for t in tests.values() if (v := _metric(t, metric_path)) is not None]
            if values:
                entry[name] = {"values": values, "mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0}
        results[key] = entry
    return results


def markdown(results: dict, config: str, seeds: list[int], data: str | None = None) -> str:
    def cell(entry, name):
        if name not in entry:
            return "-"
        if len(entry[name]["values"]) == 1:  # one seed: no spread to show
            return f"{100 * entry[name]['mean']:.1f}"
        return f"{100 * entry[name]['mean']:.1f} ± {100 * entry[name]['std']:.1f}"

    def shown(path: str) -> str:  # as the README's command names it, not by where this checkout lives
        try:
            return str(Path(path).resolve().relative_to(ROOT))
        except ValueError:
            return path

    on = f"`{shown(config)}`" + (f" with data `{shown(data)}`" if data else "")
    lines = [f"Ablation on {on}, seeds {seeds}, {datetime.date.today()}: test-split EER (%), mean ± std over the seeds done (one seed: its value)", "",
             "| variant | seeds done | pooled | original spoofs only | unseen systems |", "|---|---|---|---|---|"]
    for key, entry in results.items():
        lines.append(f"| ({key}) {entry['label']} | {len(entry['seeds_done'])} | {cell(entry, 'pooled')} | {cell(entry, 'originals')} | {cell(entry, 'unseen')} |")
    paradigms = sorted({name[len(RECONSTRUCTION):] for entry in results.values() for name in entry if name.startswith(RECONSTRUCTION)})
    if paradigms:
        lines += ["", "Per reconstruction paradigm of the test split (EER %, its reconstructions against the real clips):", "",
                  "| variant | " + " | ".join(paradigms) + " |", "|---|" + "---|" * len(paradigms)]
        for key, entry in results.items():
            lines.append(f"| ({key}) | " + " | ".join(cell(entry, RECONSTRUCTION + name) for name in paradigms) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(ROOT / "configs" / "ablation.yaml"))
    parser.add_argument("--data", help="dataset folder for every run (config key data.path); default: the config's")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--paradigms", nargs="*", default=["diffusion", "world"], help="training paradigms for the per-paradigm runs of (e)")
    parser.add_argument("--variants", nargs="*", help="train only these keys (a b c d e e-diffusion ...); default all. "
                        "The tables always cover every variant with finished runs")
    parser.add_argument("--tables-only", action="store_true", help="train nothing: rewrite ablation.md/json from the finished runs")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="training-config overrides for every run, after the variant's (e.g. model.overrides.racl_cls_weight=1.0)")
    parser.add_argument("--out", default="outputs/ablation")
    args = parser.parse_args(argv)
    runs = all_runs(args.paradigms)
    to_train = runs
    if args.variants:
        unknown = sorted(set(args.variants) - set(runs))
        if unknown:
            parser.error(f"unknown variants {unknown}; choose from {sorted(runs)}")
        to_train = {k: v for k, v in runs.items() if k in args.variants}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    def write_tables():  # every finished seed, not only this call's: a partial rerun never narrows the tables
        finished = {int(path.parent.name.split("-")[1]) for path in out.glob("*/seed-*/summary.json")}
        seeds = sorted(set(args.seeds) | finished)
        results = collect(out, runs, seeds)
        (out / "ablation.json").write_text(json.dumps(results, indent=2))
        (out / "ablation.md").write_text(markdown(results, args.config, seeds, args.data))

    write_tables()
    if not args.tables_only:  # seed-major, finished runs skipped: interrupted ablations still compare every variant
        run_seeds(args.seeds, {key: out / key for key in to_train},
                  lambda key, seed, run_out: train_one(args.config, to_train[key][1], seed, run_out, args.data, args.set),
                  skip_finished=True, after_each=lambda key, seed: write_tables())
    print((out / "ablation.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
