"""Smoke tests: the installed commands start. They also keep the suite from ever being empty.

They run the interpreter that runs the tests (the venv's under `make test`) in a subprocess, from a scratch
directory, so they check the installed package rather than the source tree.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

import clapas


def _run(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, cwd=cwd, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL, check=False
    )


def _clapas_command() -> str:
    """The `clapas` console script next to this interpreter (the venv's), else the one on PATH."""
    for name in ("clapas", "clapas.exe"):
        script = Path(sys.executable).parent / name
        if script.is_file():
            return str(script)
    found = shutil.which("clapas")
    if found is None:
        pytest.fail("the `clapas` command is not installed (make venv, or pip install -e '.[dev]')")
    return found


def test_clapas_help(tmp_path: Path) -> None:
    r = _run(_clapas_command(), "--help", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("usage: clapas"), r.stdout


def test_clapas_demo_subcommand_exists(tmp_path: Path) -> None:
    # `make demo` runs `clapas demo`.
    r = _run(_clapas_command(), "demo", "--help", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "usage: clapas demo" in r.stdout, r.stdout


def test_python_m_clapas_version(tmp_path: Path) -> None:
    r = _run(sys.executable, "-m", "clapas", "--version", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"clapas {clapas.__version__}"


def test_installed_version_matches_package() -> None:
    # pyproject.toml's version and clapas.__version__ are kept by hand; catch them drifting apart.
    assert version("clapas") == clapas.__version__
