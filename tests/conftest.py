"""Shared test fixtures: every test runs with AURA_HOME in a tmp dir (never the user's
home), and `aura` is run as a real process from this checkout.

Tests that drive a terminal in tmux, a real shell's completion or a cluster with faults
injected are marked ``slow`` here, by module and fixture, so `pytest -m "not slow"` is
the quick run and no test file has to carry the marker itself.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
AGENTS = Path(__file__).resolve().parent / "agents"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
# Scale every timeout in the tests (slow CI machines): AURA_TEST_TIMEOUT_FACTOR=3.
TIMEOUT_FACTOR = float(os.environ.get("AURA_TEST_TIMEOUT_FACTOR", "1"))


# Modules whose every test is slow: tmux screens, and the remote cluster's fault drills.
SLOW_MODULES = frozenset({"test_remote_faults", "test_tui", "test_tui_stream",
                          "test_picker_tmux", "test_best_of_n"})
# In test_completion, the tests that start a real shell (bash, fish, zsh, elvish, pwsh)
# or tmux are the ones asking for an installed aura, a zipapp or a tmux terminal.
SLOW_COMPLETION_FIXTURES = frozenset({"install", "interactive_install", "pyz_file", "tmux"})


def is_slow(module: str, fixtures: Sequence[str]) -> bool:
    """Whether a test of ``module`` (the file's name without .py) using ``fixtures`` is one
    the quick run leaves out."""
    if module in SLOW_MODULES:
        return True
    return module == "test_completion" and not SLOW_COMPLETION_FIXTURES.isdisjoint(fixtures)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        module = item.path.stem
        if is_slow(module, getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def aura_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    home = tmp_path / "aura-home"
    home.mkdir()
    monkeypatch.setenv("AURA_HOME", str(home))
    # Outside any git repo (the checkout of aura is one): a run inside a repo makes a
    # worktree of it by default.
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AURA_DB", raising=False)
    monkeypatch.delenv("AURA_CONFIG", raising=False)
    monkeypatch.delenv("AURA_COORDINATOR", raising=False)
    monkeypatch.delenv("AURA_TOKEN", raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    yield home


def aura_argv(*args: str) -> list[str]:
    return [sys.executable, str(ROOT / "aura.py"), *args]


def run_aura(*args: str, input: str | None = None, env: dict[str, str] | None = None,
             cwd: str | Path | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run aura from this checkout as a real process and wait for it."""
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    return subprocess.run(aura_argv(*args), input=input, capture_output=True, text=True,
                          env=full_env, cwd=cwd, timeout=timeout * TIMEOUT_FACTOR,
                          stdin=None if input is not None else subprocess.DEVNULL)


def agent_command(script: str, *args: str) -> str:
    """A --base-command running tests/agents/<script> with this interpreter."""
    import shlex

    return shlex.join([sys.executable, str(AGENTS / script), *args])


def write_agent(path: Path, lines: Sequence[str]) -> Path:
    """Write a tiny fake agent script at ``path`` (the lines are its Python source)."""
    path.write_text("\n".join(lines) + "\n")
    return path
