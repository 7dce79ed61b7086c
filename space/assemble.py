"""Assemble a deployable Hugging Face Space folder for the RACL demo, and optionally push it.

    python space/assemble.py --model FOLDER_OR_HUB_ID --out DIR [--overwrite] [--push SPACE_ID [--private]]

The folder holds:

- ``app.py``, its sibling modules (every ``space/*.py`` but this script) and ``examples/``;
- ``README.md``: this folder's Space card, its front matter synced to the installed gradio and Python;
- ``racl-<version>-py3-none-any.whl``: the racl package built from this checkout;
- ``requirements.txt``: one list, the wheel with its ``space`` extra (``./racl-...whl[space]``), so pip
  resolves racl's own dependencies and the Space's from the wheel, each of them also pinned to the
  version installed here;
- ``space_config.json``: which model to load: ``"model"`` (a copy of a local model folder under
  ``model/``) or a Hub id;

so ``pip install -r requirements.txt && python app.py`` inside the folder runs the demo.

``--push`` creates (or reuses) a Gradio Space with huggingface_hub and uploads the folder in one
commit. The Spaces builder installs ``requirements.txt`` before the repository's files are in place,
so for a pushed public Space the wheel is referenced by its URL in the Space repo
(``racl[space] @ https://...whl``). A private Space's files cannot be downloaded without a token, so
there the wheel's packages are unpacked beside ``app.py`` (Python imports them from the script's own
folder) and ``requirements.txt`` lists their pinned dependencies.
"""

from __future__ import annotations

import argparse
import email.parser
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import yaml
from packaging.requirements import Requirement

SPACE_DIR = Path(__file__).resolve().parent
ROOT = SPACE_DIR.parent
EXTRAS = ("space",)  # racl extras the app needs on top of racl's own requirements
NOT_APP_FILES = ("assemble.py",)  # space/*.py that the Space itself does not run
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?$")  # "user/name" (or a legacy "name")
# Training leftovers a model folder may hold; the Space needs none of them.
MODEL_IGNORE = (".git", "__pycache__", "optimizer.pt", "scheduler.pt", "rng_state*.pth", "training_args.bin", "trainer_state.json", "checkpoint-*")


class AssembleError(RuntimeError):
    """A problem with the inputs, reported without a traceback."""


def build_wheel(dest: Path) -> Path:
    """``pip wheel --no-deps`` of the checkout into ``dest``; returns the wheel's path."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", str(ROOT), "-w", tmp]
        if _has_build_backend():  # build with what is installed: no index needed, and faster
            cmd.insert(5, "--no-build-isolation")
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise AssembleError(f"building the racl wheel failed:\n{done.stdout}{done.stderr}")
        wheels = list(Path(tmp).glob("racl-*.whl"))
        if len(wheels) != 1:
            raise AssembleError(f"expected one racl wheel, pip wrote: {os.listdir(tmp)}")
        return Path(shutil.copy2(wheels[0], dest / wheels[0].name))


def _has_build_backend() -> bool:
    try:
        import setuptools  # noqa: F401
    except ImportError:
        return False
    return True


def wheel_requirements(wheel: Path, extras: tuple[str, ...] = EXTRAS) -> list[Requirement]:
    """The wheel's own Requires-Dist that apply here: the base ones plus those of ``extras``."""
    with zipfile.ZipFile(wheel) as zf:
        name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = email.parser.Parser().parsestr(zf.read(name).decode())
    chosen = []
    for line in metadata.get_all("Requires-Dist") or []:
        req = Requirement(line)
        if req.marker is None or any(req.marker.evaluate({"extra": extra}) for extra in ("", *extras)):
            req.marker = None
            chosen.append(req)
    return chosen


def pinned(requirements: list[Requirement]) -> list[str]:
    """``name==installed version`` for each requirement; the original specifier where not installed."""
    lines, seen = [], set()
    for req in requirements:
        key = req.name.lower().replace("_", "-")
        if key in seen:
            continue
        seen.add(key)
        try:
            lines.append(f"{req.name}=={importlib.metadata.version(req.name)}")
        except importlib.metadata.PackageNotFoundError:
            print(f"assemble: {req.name} is not installed here; keeping {req}", file=sys.stderr)
            lines.append(str(req))
    return lines


def wheel_line(wheel: Path, url_base: str | None = None) -> str:
    """The requirement that installs the wheel with the Space's extras, from this folder or from a URL."""
    extras = ",".join(EXTRAS)
    if url_base:
        return f"racl[{extras}] @ {url_base.rstrip('/')}/{wheel.name}"
    return f"./{wheel.name}[{extras}]"  # pip's form for a local file with extras; relative to the folder


def requirements_text(pins: list[str], racl_line: str | None) -> str:
    head = [
        "# Written by space/assemble.py: the third-party packages pinned to the environment that built this",
        "# Space (torch first: torchaudio does not guard against another torch), then the racl package.",
    ]
    tail = [racl_line] if racl_line else ["# racl: its packages are unpacked beside app.py (private Space)."]
    return "\n".join([*head, *pins, *tail]) + "\n"


def unpack_packages(wheel: Path, out: Path) -> list[str]:
    """The wheel's top-level packages (not its metadata) extracted into ``out``; returns their names."""
    with zipfile.ZipFile(wheel) as zf:
        members = [n for n in zf.namelist() if not n.split("/")[0].endswith(".dist-info")]
        zf.extractall(out, members)
    return sorted({n.split("/")[0] for n in members})


def copy_app(out: Path) -> None:
    """The app and its sibling modules, and the example clips (without the script that makes them)."""
    for path in sorted(SPACE_DIR.glob("*.py")):
        if path.name not in NOT_APP_FILES:
            shutil.copy2(path, out / path.name)
    if (SPACE_DIR / "examples").is_dir():
        shutil.copytree(SPACE_DIR / "examples", out / "examples", ignore=shutil.ignore_patterns("*.sh"))


def space_card(model: str, local_model: bool) -> str:
    """space/README.md with its front matter synced to this environment."""
    import gradio

    text = (SPACE_DIR / "README.md").read_text(encoding="utf-8")
    _, front, body = text.split("---\n", 2)
    meta = yaml.safe_load(front)
    meta.update(sdk="gradio", sdk_version=gradio.__version__, app_file="app.py", python_version=f"{sys.version_info.major}.{sys.version_info.minor}")
    if not local_model:
        meta["models"] = [model]
    return "---\n" + yaml.safe_dump(meta, sort_keys=False, allow_unicode=True) + "---\n" + body


def copy_model(model: str, out: Path) -> str:
    """A local model folder is copied to ``out/model``; a Hub id is kept as it is. Returns the config value."""
    if os.path.isdir(model):
        if not (Path(model) / "config.json").exists():
            raise AssembleError(f"{model}: not a model folder (no config.json)")
        shutil.copytree(model, out / "model", ignore=shutil.ignore_patterns(*MODEL_IGNORE))
        return "model"
    if not HUB_ID.match(model):
        raise AssembleError(f"{model}: no such model folder, and not a Hub id")
    return model


def prepare_out(out: Path, overwrite: bool) -> None:
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise AssembleError(f"{out} exists and is not empty (pass --overwrite to replace it)")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)


def assemble(model: str, out: str | os.PathLike, overwrite: bool = False, wheel_url_base: str | None = None, vendor: bool = False) -> Path:
    """Write the Space folder.

    ``wheel_url_base``: reference the wheel by URL (a pushed public Space); ``vendor``: unpack the
    wheel's packages beside the app instead of installing it (a pushed private Space).
    """
    out = Path(out).resolve()
    prepare_out(out, overwrite)
    copy_app(out)
    model_ref = copy_model(model, out)
    (out / "space_config.json").write_text(json.dumps({"model": model_ref}, indent=2) + "\n")
    (out / "README.md").write_text(space_card(model, model_ref == "model"), encoding="utf-8")
    wheel = build_wheel(out)
    pins = pinned(wheel_requirements(wheel))
    if vendor:
        unpack_packages(wheel, out)
        wheel.unlink()
        racl_line = None
    else:
        racl_line = wheel_line(wheel, wheel_url_base)
    (out / "requirements.txt").write_text(requirements_text(pins, racl_line))
    return out


def push(folder: Path, space_id: str, private: bool = False, token: str | None = None) -> str:
    """Create (or reuse) the Gradio Space and upload the folder in one commit; returns the commit URL."""
    from racl.hub import push_folder

    return push_folder(folder, space_id, repo_type="space", private=private, token=token, space_sdk="gradio",
                       commit_message="Deploy the RACL detector demo")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="assemble.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="model folder (copied into the Space) or Hub id")
    parser.add_argument("--out", required=True, help="the Space folder to write")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    parser.add_argument("--push", metavar="SPACE_ID", help="upload the folder to this Space (user/name)")
    parser.add_argument("--private", action="store_true", help="with --push: a private Space")
    args = parser.parse_args(argv)
    url_base = f"https://huggingface.co/spaces/{args.push}/resolve/main" if args.push and not args.private else None
    try:
        out = assemble(args.model, args.out, args.overwrite, wheel_url_base=url_base, vendor=bool(args.push and args.private))
    except AssembleError as error:
        print(f"assemble: {error}", file=sys.stderr)
        return 2
    print(f"assemble: wrote {out}")
    if args.push:
        print(f"assemble: pushed {push(out, args.push, args.private)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
