"""``pip install .`` alone, without extras, scores: racl-score runs in a virtual environment that holds
exactly the base install's distributions, and the training, build and evaluation stacks are absent.

No download: the environment is made with ``venv --without-pip`` and filled with symbolic links to the
files of the distributions already installed here, those in the transitive closure of racl's base
requirements only (read from the installed metadata, markers evaluated with ``packaging``). A ``.pth``
file pointing at this environment would expose every package in it, extras included, so each
distribution's own top-level files are linked instead, from its RECORD.
"""

from __future__ import annotations

import configparser
import importlib.metadata as metadata
import json
import os
import subprocess
import sys
from pathlib import Path, PurePosixPath

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from conftest import ROOT, speech_like

PROJECT_PACKAGES = ("modeling_racl", "racl", "datasets_scripts")  # what the wheel installs (setup.cfg)
ABSENT = ("datasets", "accelerate", "diffusers", "sklearn", "scipy", "matplotlib", "gradio", "tensorboard")


def declared_base_requirements() -> set[str]:
    """setup.cfg's install_requires, to tell a stale installed metadata from a wrong one."""
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    lines = [ln.strip() for ln in cfg["options"]["install_requires"].splitlines() if ln.strip()]
    return {str(Requirement(ln)) for ln in lines}


def requirements_of(dist: metadata.Distribution, extras: frozenset[str]) -> list[Requirement]:
    """The distribution's requirements that apply here with ``extras`` (none: the base install)."""
    chosen = []
    for line in dist.requires or []:
        req = Requirement(line)
        if req.marker is None or any(req.marker.evaluate({"extra": extra}) for extra in ("", *extras)):
            chosen.append(req)
    return chosen


def base_closure(root: str = "racl") -> dict[str, metadata.Distribution]:
    """Every installed distribution the base install of ``root`` pulls in, transitively (``root`` excluded)."""
    found: dict[str, metadata.Distribution] = {}
    seen: set[tuple[str, frozenset[str]]] = set()
    pending = [(req, frozenset(req.extras)) for req in requirements_of(metadata.distribution(root), frozenset())]
    while pending:
        req, extras = pending.pop()
        key = canonicalize_name(req.name)
        if (key, extras) in seen:
            continue
        seen.add((key, extras))
        try:
            dist = found.setdefault(key, metadata.distribution(req.name))
        except metadata.PackageNotFoundError:
            pytest.fail(f"{req} (a base requirement, transitively) is not installed here")
        assert req.specifier.contains(dist.version, prereleases=True), f"installed {req.name} {dist.version} does not satisfy {req}"
        pending += [(sub, frozenset(sub.extras)) for sub in requirements_of(dist, extras)]
    return found


def site_files(dist: metadata.Distribution) -> tuple[Path, list[PurePosixPath]]:
    """The distribution's site folder and its files there (scripts installed elsewhere are left out)."""
    files = dist.files
    assert files is not None, f"{dist.metadata['Name']} has no RECORD"
    return Path(dist.locate_file("")), [PurePosixPath(f.as_posix()) for f in files if ".." not in f.parts]


def add_to_tree(tree: dict, path: PurePosixPath) -> None:
    for part in path.parts:
        tree = tree.setdefault(part, {})


def link_tree(source: Path, target: Path, wanted: dict, other: dict) -> int:
    """Link ``wanted``'s entries of ``source`` into ``target``; an entry ``other`` shares becomes a folder
    whose own entries are linked, so no file of an unwanted distribution is reachable. Returns links made."""
    made = 0
    for name, below in wanted.items():
        if name == "__pycache__":
            continue
        src, dst = source / name, target / name
        if name not in other or not below:  # only wanted distributions have files here (or a shared file)
            if not dst.exists():
                dst.symlink_to(src, target_is_directory=src.is_dir())
                made += 1
        else:
            dst.mkdir(exist_ok=True)
            made += link_tree(src, dst, below, other[name])
    return made


def make_base_venv(venv: Path, closure: dict[str, metadata.Distribution]) -> Path:
    """A venv without pip whose site-packages links the closure's files and the project's packages."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], capture_output=True, text=True, check=True)
    site = Path(purelib.stdout.strip())
    wanted: dict[Path, dict] = {}
    other: dict[Path, dict] = {}
    closure_keys = set(closure)
    for dist in metadata.distributions():
        key = canonicalize_name(dist.metadata["Name"])
        if key == "racl" or dist.files is None:
            continue
        source, files = site_files(dist)
        tree = (wanted if key in closure_keys else other).setdefault(source, {})
        for f in files:
            add_to_tree(tree, f)
    for source, tree in wanted.items():
        link_tree(source, site, tree, other.get(source, {}))
    for package in PROJECT_PACKAGES:
        (site / package).symlink_to(ROOT / package, target_is_directory=True)
    return python


def isolated_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    return {**env, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf-home"), "PYTHONNOUSERSITE": "1"}


@pytest.fixture(scope="module")
def base_venv(tmp_path_factory):
    installed = {str(r) for r in requirements_of(metadata.distribution("racl"), frozenset())}
    if installed != declared_base_requirements():
        pytest.fail("the installed racl metadata is older than setup.cfg's install_requires: rerun bash scripts/setup.sh")
    closure = base_closure()
    assert {"torch", "torchaudio", "torchcodec", "transformers", "soundfile", "numpy", "pyyaml", "safetensors", "huggingface-hub"} <= set(closure)
    assert not {"datasets", "accelerate", "diffusers", "scikit-learn", "scipy", "matplotlib", "gradio"} & set(closure)
    venv = tmp_path_factory.mktemp("base-install") / "venv"
    return make_base_venv(venv, closure), closure


def test_the_venv_holds_exactly_the_base_closure(base_venv, tmp_path):
    python, closure = base_venv
    listing = "import importlib.metadata as m, json; print(json.dumps(sorted({d.metadata['Name'] for d in m.distributions()})))"
    done = subprocess.run([str(python), "-c", listing], cwd=tmp_path, env=isolated_env(tmp_path), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert {canonicalize_name(n) for n in json.loads(done.stdout)} == set(closure)


def test_racl_score_runs_on_the_base_install(base_venv, tiny_model_dir, tmp_path):
    import soundfile as sf

    python, _ = base_venv
    clip = tmp_path / "clip.wav"
    sf.write(str(clip), speech_like(5.0, seed=1), 16_000, subtype="PCM_16")
    done = subprocess.run(
        [str(python), "-m", "racl.scoring", "--model", str(tiny_model_dir), "--device", "cpu", "--format", "json", str(clip)],
        cwd=tmp_path, env=isolated_env(tmp_path), capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (row,) = json.loads(done.stdout)
    assert row["error"] == "" and isinstance(row["score"], float) and 0.0 <= row["p_bonafide"] <= 1.0
    assert row["label"] in ("bonafide", "spoof") and len(row["windows"]) == 2  # 5 s: windows of 4 s every 2 s


def test_the_extras_stacks_are_not_importable_there(base_venv, tmp_path):
    python, _ = base_venv
    probe = f"import importlib.util, json; print(json.dumps([m for m in {list(ABSENT)!r} if importlib.util.find_spec(m)]))"
    done = subprocess.run([str(python), "-c", probe], cwd=tmp_path, env=isolated_env(tmp_path), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []
    for module in ("datasets", "accelerate", "diffusers"):
        failed = subprocess.run([str(python), "-c", f"import {module}"], cwd=tmp_path, env=isolated_env(tmp_path), capture_output=True, text=True, timeout=120)
        assert failed.returncode != 0 and "ModuleNotFoundError" in failed.stderr, module
