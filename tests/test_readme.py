"""README.md is the user's document: short, in the agreed order, every path and link real, and the blocks
marked ``# tested`` (a first line that is that comment) run as written.

The marked blocks run in a scratch folder that links the checkout's files, with ``outputs/demo/model``
a tiny exported model and ``clip.wav`` / ``my_audio/`` generated clips, so the commands are the README's
own and nothing is written into the checkout.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf

from conftest import ROOT, SR, speech_like

README = ROOT / "README.md"
DOCS = ROOT / "docs"
MAX_LINES = 200
SECTIONS = [  # the order users read in
    "Install",
    "Score a file or a folder",
    "What the score and the probability mean",
    "Train the paper's model",
    "Evaluate",
    "The demo",
    "Where each concept lives",
    "Tests",
]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
REPO_PATH = re.compile(r"`((?:modeling_racl|racl|datasets_scripts|space|benchmarks|configs|tests|scripts|docs|metrics)/[\w./*-]*)`")
SKIP_ENTRIES = {"outputs", "build", "test-artifacts", "dist", "runs", "cache"}  # results and build products, not sources
CITING = {".py", ".md", ".yaml", ".json", ".cfg", ".sh"}


def readme_text() -> str:
    return README.read_text(encoding="utf-8")


def marked_blocks() -> list[tuple[int, str, str]]:
    """(line, language, body) of each fenced block whose first line is ``# tested``."""
    text = readme_text()
    blocks = []
    for match in FENCE.finditer(text):
        language, body = match.group(1), match.group(2)
        if body.splitlines()[:1] == ["# tested"]:
            blocks.append((text.count("\n", 0, match.start()) + 1, language, body))
    return blocks


def slug(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", ""))
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    return {slug(m.group(1)) for m in re.finditer(r"^#+\s+(.*)$", path.read_text(encoding="utf-8"), re.M)}


def test_readme_is_short_and_in_order():
    text = readme_text()
    assert len(text.splitlines()) <= MAX_LINES
    headings = re.findall(r"^## (.*)$", text, re.M)
    positions = []
    for section in SECTIONS:
        found = [i for i, h in enumerate(headings) if h.startswith(section)]
        assert found, f"README has no section '{section}...'"
        positions.append(found[0])
    assert positions == sorted(positions), f"README sections out of order: {headings}"
    assert "scripts/fresh_machine_check.sh" in text  # the procedure the fresh-machine times come from


@pytest.mark.parametrize("document", ["README.md", *sorted(f"docs/{p.name}" for p in DOCS.glob("*.md"))])
def test_links_and_paths_resolve(document):
    path = ROOT / document
    text = path.read_text(encoding="utf-8")
    for target in LINK.findall(text):
        if re.match(r"^[a-z]+://", target):
            continue
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        assert linked.exists(), f"{document}: link to {target} does not resolve"
        if anchor:
            assert anchor in anchors(linked), f"{document}: no heading for #{anchor} in {file_part or document}"
    if document == "README.md":
        for name in REPO_PATH.findall(text):
            assert list(ROOT.glob(name.rstrip("/"))), f"README names {name}, which is not in the repository"


def source_files():
    """The repository's own text files (no virtual environment, build products or results)."""
    for top, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if not (d.startswith(".") or d in SKIP_ENTRIES or d.endswith(".egg-info") or d == "__pycache__")]
        yield from (Path(top) / f for f in files if Path(f).suffix in CITING)


def test_code_cites_only_headings_of_docs_design():
    """``docs/design.md#anchor`` and ``docs/design.md, "Heading"`` in code, configs and docs name real sections."""
    headings = anchors(DOCS / "design.md")
    cited = re.compile(r"docs/design\.md(?:#([\w-]+)|,? \(?\"([^\"]+)\")")
    offenders = []
    for path in source_files():
        if path == Path(__file__).resolve():  # its own docstring shows the forms
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        if "DESIGN.md" in text:
            offenders.append(f"{path.relative_to(ROOT)}: cites DESIGN.md (the notes are docs/design.md)")
        for anchor, heading in cited.findall(text):
            if (anchor or slug(heading)) not in headings:
                offenders.append(f"{path.relative_to(ROOT)}: docs/design.md has no section {anchor or heading!r}")
    assert not offenders, offenders


@pytest.fixture(scope="module")
def scratch(tmp_path_factory, tiny_model_dir):
    """The checkout's files by link, with the README's model folder and clips in place."""
    folder = tmp_path_factory.mktemp("readme")
    for entry in ROOT.iterdir():
        if not entry.name.startswith(".") and entry.name not in SKIP_ENTRIES and not entry.name.endswith(".egg-info"):
            (folder / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())
    (folder / "outputs" / "demo").mkdir(parents=True)
    (folder / "outputs" / "demo" / "model").symlink_to(tiny_model_dir, target_is_directory=True)
    sf.write(str(folder / "clip.wav"), speech_like(3.0, seed=0), SR)
    (folder / "my_audio").mkdir()
    for i in range(2):
        sf.write(str(folder / "my_audio" / f"take{i}.wav"), speech_like(2.0 + i, seed=i + 1), SR)
    return folder


@pytest.mark.parametrize("line,language,body", [pytest.param(*block, id=f"line{block[0]}") for block in marked_blocks()])
def test_tested_blocks_run_as_written(scratch, line, language, body):
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",  # the console scripts
        "HF_HUB_OFFLINE": "1",
    }
    if language == "python":
        command = [sys.executable, "-c", body]
    else:
        assert language == "bash", f"README line {line}: a tested block must be bash or python"
        command = ["bash", "-euo", "pipefail", "-c", body]
    done = subprocess.run(command, cwd=scratch, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"README block at line {line} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    if "racl-score --model" in body:
        for name in ("clip.wav", "take0.wav", "take1.wav"):
            assert name in done.stdout, done.stdout
    if language == "python":
        assert "bonafide" in done.stdout and "spoof" in done.stdout, done.stdout


def test_the_readme_tests_every_command():
    """Every console script of setup.cfg and every script the README runs by path has a tested ``--help``."""
    import configparser

    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    scripts = [ln.split("=")[0].strip() for ln in cfg["options.entry_points"]["console_scripts"].splitlines() if ln.strip()]
    tested = "\n".join(body for _, _, body in marked_blocks())
    for script in scripts:
        assert f"{script} --help" in tested, f"{script} has no tested --help in the README"
    for script in set(re.findall(r"python ((?:space/)?\w+\.py)", readme_text())):
        assert f"python {script} --help" in tested, f"{script} has no tested --help in the README"


def test_the_paper_training_config_is_complete():
    """The README's GPU run: its training config parses strictly, names the paper's model and its data build."""
    import json

    from modeling_racl import RACLConfig
    from racl.config import read_yaml
    from racl.training.config import load_train_config

    cfg = load_train_config(ROOT / "configs" / "asvspoof2019_la.yaml")
    model = RACLConfig(**json.loads((ROOT / cfg.model.config).read_text()))  # the config only: no weights
    assert (model.frontend, model.backbone_name_or_path, model.aggregation) == ("backbone", "facebook/wav2vec2-xls-r-300m", "weighted")
    assert (model.racl_alpha, model.racl_beta, model.racl_gamma) == (0.6, 0.1, 0.3)
    assert cfg.model.init_backbone_from_pretrained and abs(cfg.data.crop_seconds * SR - 64_600) < SR / 100
    assert read_yaml(ROOT / "configs" / "data" / "asvspoof2019_la.yaml")[0]["output_dir"] == cfg.data.path
    assert "configs/asvspoof2019_la.yaml" in readme_text() and "configs/data/asvspoof2019_la.yaml" in readme_text()
