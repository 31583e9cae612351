"""The `slow` marker conftest.py puts on tmux, real-shell and fault tests, as pytest
itself collects them."""

from __future__ import annotations

import subprocess
import sys

from .conftest import ROOT


def collected(*args: str) -> set[str]:
    result = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                             "--collect-only", "-q", *args], capture_output=True, text=True,
                            cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return {line.split("[")[0] for line in result.stdout.splitlines() if "::" in line}


def test_slow_takes_the_shell_and_tmux_tests_and_leaves_the_rest() -> None:
    slow = collected("-m", "slow", "tests/test_completion.py", "tests/test_remote_faults.py",
                     "tests/test_engine.py")
    quick = collected("-m", "not slow", "tests/test_completion.py",
                      "tests/test_remote_faults.py", "tests/test_engine.py")
    assert "tests/test_completion.py::test_zsh_completes_on_tab" in slow
    assert "tests/test_completion.py::test_bash_registers_the_name_aura_was_started_as" in slow
    assert "tests/test_completion.py::test_completion_refuses_an_unknown_shell" in quick
    assert all(name.startswith("tests/test_remote_faults.py") or
               name.startswith("tests/test_completion.py") for name in slow)
    assert not any(name.startswith("tests/test_remote_faults.py") for name in quick)
    assert any(name.startswith("tests/test_engine.py") for name in quick)
    assert slow.isdisjoint(quick)
