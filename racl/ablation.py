"""The paper's ablation in miniature, on the demo dataset (may take hours; run once, results into the README).

Variants, each trained with several seeds and scored on the held-out test split (mean ± std EER):
  (a) CE on original clips only            (b) CE with reconstructions as spoof
  (c) + Lstd                               (d) + Lenh                 (e) full RACL (+ Lreg)
and (e) per reconstruction paradigm (training keeps only that paradigm's reconstructions).

    python -m racl.ablation [--config configs/demo.yaml] [--seeds 0 1 2] [--paradigms diffusion world] [--out outputs/ablation]
"""

from __future__ import annotations

import argparse
import datetime
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NO_CONTRAST = ["model.overrides.racl_alpha=0", "model.overrides.racl_beta=0", "model.overrides.racl_gamma=0"]
VARIANTS = {
    "a: CE, originals only": ["data.use_reconstructions=false", *NO_CONTRAST],
    "b: CE, reconstructions as spoof": NO_CONTRAST,
    "c: + Lstd": ["model.overrides.racl_alpha=0.6", "model.overrides.racl_beta=0", "model.overrides.racl_gamma=0"],
    "d: + Lenh": ["model.overrides.racl_alpha=0.6", "model.overrides.racl_beta=0.1", "model.overrides.racl_gamma=0"],
    "e: full RACL (+ Lreg)": ["model.overrides.racl_alpha=0.6", "model.overrides.racl_beta=0.1", "model.overrides.racl_gamma=0.3"],
}


def run_variant(name: str, overrides: list[str], args) -> dict:
    slug = name.split(":")[0] if ":" in name else name
    out = Path(args.out) / slug.replace(" ", "_").replace("/", "-")
    cmd = [sys.executable, str(ROOT / "train_racl.py"), "--config", args.config, "--seeds", *map(str, args.seeds),
           f"training.output_dir={out}", "training.report_to=none", *overrides]
    proc = subprocess.run(cmd, cwd=ROOT)
    if proc.returncode != 0:
        return {"error": f"exit {proc.returncode}"}
    return json.loads((out / "multi_seed.json").read_text())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(ROOT / "configs" / "demo.yaml"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--paradigms", nargs="*", default=["diffusion", "world"], help="training paradigms for the per-paradigm runs of (e)")
    parser.add_argument("--out", default="outputs/ablation")
    args = parser.parse_args(argv)
    runs = dict(VARIANTS)
    for paradigm in args.paradigms:
        runs[f"e, {paradigm} only"] = [*VARIANTS["e: full RACL (+ Lreg)"], f"data.reconstructions=[{paradigm}]"]
    results = {name: run_variant(name, overrides, args) for name, overrides in runs.items()}
    lines = [f"Ablation on `{args.config}`, seeds {args.seeds}, {datetime.date.today()}: test-split EER (%) mean ± std", "",
             "| variant | test EER (%) |", "|---|---|"]
    for name, r in results.items():
        cell = f"{100 * r['test_eer']['mean']:.2f} ± {100 * r['test_eer']['std']:.2f}" if "test_eer" in r else r.get("error", "n/a")
        lines.append(f"| {name} | {cell} |")
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "ablation.json").write_text(json.dumps(results, indent=2, default=float))
    (Path(args.out) / "ablation.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
