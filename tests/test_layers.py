"""The layering rule of docs/design.md ("Layout"), checked on the source: import-linter's contracts
(setup.cfg), plus what import-linter cannot see (sys.path edits, checkout files run by path, file size)."""

import configparser
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("modeling_racl", "racl", "datasets_scripts")
SOURCE_DIRS = (*PACKAGES, "space", "benchmarks")
MAX_LINES = 400


def _sources(dirs=SOURCE_DIRS):
    for d in dirs:
        yield from sorted((ROOT / d).rglob("*.py"))
    yield ROOT / "train_racl.py"


def test_import_contracts_hold():
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run([str(lint), "--no-cache", str(ROOT / "setup.cfg")], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "broken" in done.stdout and "0 broken" in done.stdout


def test_every_module_of_the_packages_is_in_a_layer():
    """A new module outside every layer would escape the layers contract unnoticed."""
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    listed = set(re.split(r"[\s|:()]+", cfg["importlinter:contract:layers"]["layers"])) - {""}
    for package in PACKAGES:
        path = ROOT / package
        for info in pkgutil.walk_packages([str(path)], prefix=f"{package}."):
            parts = info.name.split(".")
            assert any(".".join(parts[:k]) in listed for k in range(1, len(parts) + 1)), f"{info.name} is in no layer of setup.cfg"


def test_no_sys_path_edits():
    pattern = re.compile(r"sys\.path\s*(\.\s*(insert|append|extend)|\[[^\]]*\]\s*=|\s*[+]?=)")
    offenders = [f"{p.relative_to(ROOT)}:{i}" for p in _sources() for i, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert not offenders, offenders


def test_no_installed_code_runs_a_checkout_file_by_path():
    """Installed modules run other code as modules (``-m``) or by import, never ``ROOT / "x.py"``."""
    pattern = re.compile(r"""["'][\w/]+\.py["']""")
    offenders = []
    for p in _sources(PACKAGES):
        for i, line in enumerate(p.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            if pattern.search(code) and ("ROOT" in code or "sys.executable" in code or "subprocess" in code):
                offenders.append(f"{p.relative_to(ROOT)}:{i}: {line.strip()}")
    assert not offenders, offenders


def test_files_are_short_enough_to_read_in_one_sitting():
    long = {str(p.relative_to(ROOT)): n for p in _sources() if (n := len(p.read_text().splitlines())) > MAX_LINES + 25}
    assert not long, f"over ~{MAX_LINES} lines: {long}"
