"""The single-file build: dist/aura.pyz runs with no site-packages at all (python3 -S)."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from .conftest import ROOT


@pytest.fixture(scope="module")
def pyz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist") / "aura.pyz"
    # --from-installed vendors the dependencies installed here: no network in tests.
    result = subprocess.run([sys.executable, str(ROOT / "build_zipapp.py"), "--from-installed",
                             "--output", str(out)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return out


def run_pyz(pyz: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-S", str(pyz), *args], capture_output=True,
                          text=True, cwd=cwd, timeout=60)


def test_the_pyz_is_an_executable_zip_with_a_shebang(pyz: Path) -> None:
    assert pyz.read_bytes().startswith(b"#!/usr/bin/env python3\n")
    assert pyz.stat().st_mode & 0o111
    names = zipfile.ZipFile(pyz).namelist()
    assert "__main__.py" in names and "aura/cli/app.py" in names and "aura/cli/app.pyc" in names
    for dep in ("click/", "questionary/", "prompt_toolkit/", "websockets/", "platformdirs/"):
        assert any(n.startswith(dep) for n in names), dep
    assert not [n for n in names if n.endswith((".so", ".pyd", ".dylib"))]
    assert any(n.endswith(".dist-info/METADATA") for n in names)
    assert (pyz.parent / "aura.pyz.sha256").read_text().endswith("  aura.pyz\n")


def test_the_pyz_runs_a_command_agent_without_site_packages(pyz: Path, tmp_path: Path) -> None:
    assert run_pyz(pyz, "--version").stdout.startswith("aura ")
    result = run_pyz(pyz, "run", "--executor", "custom", "--prompt", "ignored",
                     "--base-command", "sh", "--param", "-lc",
                     "--param", "echo out_line; echo err_line 1>&2", "--json")
    assert result.returncode == 0, result.stderr
    entries = [json.loads(line) for line in result.stdout.splitlines()]
    assert any(e.get("text") == "out_line" for e in entries)
    assert entries[-1]["state"] == "done"
    shown = json.loads(run_pyz(pyz, "session", "latest", "--json").stdout)
    assert shown["id"] == entries[-1]["session"]


def test_every_vendored_dependency_imports_from_the_zip(pyz: Path) -> None:
    code = (f"import sys; sys.path.insert(0, {str(pyz)!r}); "
            "import click, questionary, prompt_toolkit, websockets, platformdirs; "
            "import websockets.frames as f; "
            "print(f.apply_mask.__module__, click.__file__.startswith(sys.path[0]))")
    result = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    # The C speedups cannot load from a zip; the pure fallback must be what runs.
    assert result.stdout.split() == ["websockets.utils", "True"]
