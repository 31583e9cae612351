"""Being told: the notify_command gets a run's end as one JSON object on stdin, its
failure never fails the run; on a pty the plain run rings, shows a ticker and says how
long it took; without a terminal none of that is written."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import aura_argv, run_aura

AGENT = "import time\nprint('working', flush=True)\ntime.sleep(1.2)\nprint('finished')\n"


def _agent(tmp_path: Path) -> str:
    path = tmp_path / "agent.py"
    path.write_text(AGENT)
    return f"{sys.executable} {path}"


def _config(home: Path, command: object) -> None:
    value = '{ not = "a command" }' if isinstance(command, dict) else json.dumps(command)
    (home / "config.toml").write_text(f"notify_command = {value}\n")


def _wait_for(path: Path, timeout: float = 10) -> str:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if path.exists() and path.read_text().endswith("\n"):
            return path.read_text()
        time.sleep(0.05)
    raise AssertionError(f"{path} was not written")


def test_notify_command_receives_the_run_end_as_json(tmp_path: Path, aura_home: Path) -> None:
    got = tmp_path / "event.json"
    _config(aura_home, f"cat > {got}")
    result = run_aura("run", "-e", "custom", "--base-command", _agent(tmp_path),
                      "--prompt", "x", "--json")
    assert result.returncode == 0, result.stderr
    session = json.loads(result.stdout.splitlines()[-1])["session"]
    event = json.loads(_wait_for(got))
    assert event["event"] == "run.ended" and event["session"] == session
    assert event["state"] == "done" and event["exit_code"] == 0
    assert 1.0 <= event["duration_s"] < 30


def test_a_failing_notify_command_is_logged_once_and_never_fails_the_run(
        tmp_path: Path, aura_home: Path) -> None:
    for command in ("exit 7", ["/nonexistent/notifier"]):
        _config(aura_home, command)
        result = run_aura("run", "-e", "custom", "--base-command", "echo hi",
                          "--prompt", "x", "--no-tui")
        assert result.returncode == 0, (command, result.stderr)
        if not isinstance(command, str):  # an exit status may come after aura exited
            assert result.stderr.count("notify_command") == 1, result.stderr
    # A notify_command of the wrong shape is a broken config: one line before anything runs.
    _config(aura_home, {"not": "a command"})
    result = run_aura("run", "-e", "custom", "--base-command", "echo hi", "--prompt", "x",
                      "--no-tui")
    assert result.returncode == 1 and result.stderr.count("notify_command must be") == 1
    assert result.stderr.count("\n") == 1, result.stderr


def _on_pty(args: list[str]) -> tuple[int, str]:
    master, slave = pty.openpty()
    env = dict(os.environ, TERM="xterm-256color")
    proc = subprocess.Popen(aura_argv(*args), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=slave, env=env)
    os.close(slave)
    chunks: list[bytes] = []
    while True:
        ready, _, _ = select.select([master], [], [], 30)
        if not ready:
            break
        try:
            data = os.read(master, 65536)
        except OSError:  # the child closed the pty
            break
        if not data:
            break
        chunks.append(data)
    proc.stdout.read()  # type: ignore[union-attr]
    code = proc.wait(30)
    os.close(master)
    return code, b"".join(chunks).decode(errors="replace")


def test_plain_run_on_a_pty_ticks_rings_and_says_how_long(tmp_path: Path) -> None:
    code, err = _on_pty(["run", "-e", "custom", "--base-command", _agent(tmp_path),
                         "--prompt", "x", "--no-tui"])
    assert code == 0, err
    assert "[aura] running 0s · 0 tokens" in err  # the ticker, drawn in place
    assert "\r\x1b[K" in err
    assert "\a\x1b]9;aura: session " in err  # the bell and OSC 9 at the run's end
    assert err.rstrip().splitlines()[-1].split("\x1b\\")[-1].startswith(
        "[aura] session ")  # the ticker was cleared; the outcome line is whole
    assert " done in 1 s  follow up" in err


def test_without_a_terminal_there_is_no_ticker_and_no_bell(tmp_path: Path) -> None:
    result = run_aura("run", "-e", "custom", "--base-command", _agent(tmp_path),
                      "--prompt", "x", "--no-tui")
    assert result.returncode == 0, result.stderr
    assert "\a" not in result.stderr and "\x1b" not in result.stderr
    assert "· 0 tokens" not in result.stderr  # the ticker's line
    assert " done in 1 s  follow up" in result.stderr
