"""What a worker refuses to run: executors it does not offer, and, unless it allows
commands, anything that runs a program of the caller's choosing."""

from __future__ import annotations

from pathlib import Path

import pytest

from aura.remote.worker.policy import RISKY_VARS, refusal, risky_vars
from aura.service.run_options import RunOptions

from .remote_cluster import Cluster

OFFERED = {"claude": "1.0", "codex": "0.9"}


def _refusal(allow_command: bool = False, offered: object = OFFERED, **fields: object
             ) -> str | None:
    options = RunOptions(prompt="go", **{"executor": "claude", **fields})  # type: ignore[arg-type]
    return refusal(options, worker="w1", offered=offered,  # type: ignore[arg-type]
                   allow_command=allow_command)


def test_a_plain_run_of_an_offered_executor_is_allowed() -> None:
    assert _refusal() is None
    assert _refusal(vars={"FOO": "1", "LANG": "C"}, params=("-v",)) is None


def test_an_executor_not_offered_is_refused_even_with_commands_allowed() -> None:
    assert _refusal(executor="gemini") == "worker w1 does not offer executor gemini"
    assert _refusal(True, executor="custom") == (
        "worker w1 does not offer executor custom (the command executor needs "
        "`aura worker --allow-command`)")
    assert _refusal(True, review_executor="gemini") == (
        "worker w1 does not offer executor gemini (for --review-executor)")


@pytest.mark.parametrize(("fields", "refused"), [
    ({"setup": ("make",)}, "refuses --setup/--cleanup (they run arbitrary commands)"),
    ({"cleanup": ("rm -rf x",)}, "refuses --setup/--cleanup (they run arbitrary commands)"),
    ({"base_command": "sh -c id"}, "refuses --base-command (it runs an arbitrary program)"),
    ({"vars": {"PATH": "/tmp", "A": "1"}}, "refuses --var PATH (it can run arbitrary code)"),
    ({"vars": {"LD_PRELOAD": "x.so", "DYLD_INSERT_LIBRARIES": "y"}},
     "refuses --var DYLD_INSERT_LIBRARIES, LD_PRELOAD (it can run arbitrary code)"),
])
def test_commands_are_refused_unless_the_worker_allows_them(fields: dict[str, object],
                                                            refused: str) -> None:
    message = _refusal(**fields)
    assert message == f"worker w1 {refused}; start the worker with --allow-command"
    assert _refusal(True, **fields) is None


def test_risky_variables() -> None:
    assert risky_vars(["HOME", "LD_LIBRARY_PATH", "NODE_OPTIONS", "DYLD_X"]) == [
        "DYLD_X", "LD_LIBRARY_PATH", "NODE_OPTIONS"]
    assert risky_vars(RISKY_VARS) == sorted(RISKY_VARS)
    assert risky_vars(["LANG", "TERM", "MY_PATH"]) == []


def test_a_real_worker_without_allow_command_refuses_commands_through_serve(
        tmp_path: Path) -> None:
    """`aura serve` and `aura worker` (no --allow-command) on 127.0.0.1: a run of an
    executor the worker offers is refused for each command-running option, the message
    reaching the client."""
    fake = tmp_path / "claude"
    fake.write_text("#!/bin/sh\necho 1.0.0\n")
    fake.chmod(0o755)
    worker_home = tmp_path / "safe-home"
    worker_home.mkdir()
    (worker_home / "config.toml").write_text(f'[executor_paths]\nclaude = "{fake}"\n')
    c = Cluster(tmp_path)
    try:
        c.start_coordinator()
        c.start_worker("safe", allow_command=False)
        assert "claude" in c.workers()[0]["executors"]
        for extra, refused in ((("--base-command", "true"), "refuses --base-command"),
                               (("--setup", "make"), "refuses --setup/--cleanup"),
                               (("--var", "LD_PRELOAD=x.so"), "refuses --var LD_PRELOAD")):
            done = c.aura("run", "--on", "safe", "--coordinator", c.url, "--executor",
                          "claude", "--prompt", "go", *extra)
            assert done.returncode == 1, done.stderr
            assert refused in done.stderr and "--allow-command" in done.stderr
        assert "started" not in c.procs[-1].log()  # nothing ran
    finally:
        c.close()
