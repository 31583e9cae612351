"""The pickers on a real terminal (tmux): `aura run` without --model asks which model,
and `--executor custom` without an endpoint asks for it; the session remembers both."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import TIMEOUT_FACTOR, aura_argv, run_aura
from .openai_server import FakeOpenAI

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")


class Tmux:
    def __init__(self, tmp: Path) -> None:
        self.socket = f"aura-test-{uuid.uuid4().hex[:8]}"
        self.done = tmp / "exit-code"

    def tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True,
                              text=True, check=True).stdout

    def start(self, argv: list[str]) -> None:
        # The command's exit code lands in a file; the pane stays for inspection.
        command = f"{shlex.join(argv)}; echo $? > {shlex.quote(str(self.done))}; sleep 60"
        env = ["-e", f"AURA_HOME={os.environ['AURA_HOME']}", "-e", "NO_COLOR=1"]
        self.tmux("-f", "/dev/null", "new-session", "-d", "-x", "120", "-y", "40", *env,
                  command)

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p")

    def wait_for(self, text: str, timeout: float = 20) -> str:
        deadline = time.monotonic() + timeout * TIMEOUT_FACTOR
        while time.monotonic() < deadline:
            screen = self.screen()
            if text in screen:
                return screen
            time.sleep(0.1)
        raise AssertionError(f"{text!r} never appeared:\n{self.screen()}")

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", *keys)

    def exit_code(self, timeout: float = 20) -> int:
        deadline = time.monotonic() + timeout * TIMEOUT_FACTOR
        while time.monotonic() < deadline:
            if self.done.exists() and self.done.read_text().strip():
                return int(self.done.read_text())
            time.sleep(0.1)
        raise AssertionError(f"aura did not finish:\n{self.screen()}")

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True)


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[Tmux]:
    term = Tmux(tmp_path)
    try:
        yield term
    finally:
        term.close()


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


def test_model_picker_on_a_terminal(tmux: Tmux, server: FakeOpenAI) -> None:
    tmux.start(aura_argv("run", "--executor", "lms", "--openai-endpoint", server.root,
                         "--prompt", "pick one", "--no-tui"))
    screen = tmux.wait_for("Model for lms")
    assert "alpha-model" in screen and "gamma-model" in screen
    tmux.keys("Down")
    tmux.wait_for("» beta-model")
    tmux.keys("Enter")
    assert tmux.exit_code() == 0, tmux.screen()
    assert "You said: pick one" in tmux.screen()
    session = json.loads(run_aura("session", "latest", "--json").stdout)
    assert session["model"] == "beta-model"
    assert server.requests[-1]["model"] == "beta-model"


def test_endpoint_prompt_on_a_terminal(tmux: Tmux, server: FakeOpenAI) -> None:
    tmux.start(aura_argv("run", "--executor", "custom", "--prompt", "where", "--no-tui"))
    screen = tmux.wait_for("OpenAI-compatible endpoint")
    assert "http://127.0.0.1:8000/v1" in screen  # the placeholder
    tmux.keys("-l", server.url)
    tmux.keys("Enter")
    tmux.wait_for("Model for custom")
    tmux.keys("Enter")
    assert tmux.exit_code() == 0, tmux.screen()
    session = json.loads(run_aura("session", "latest", "--json").stdout)
    assert session["model"] == "alpha-model"
    # A follow-up (no terminal, no flags) reuses the endpoint and model it was given.
    follow = run_aura("run", "--resume-latest", "--executor", "custom", "--prompt", "more",
                      "--no-tui")
    assert follow.returncode == 0, follow.stderr
    assert server.requests[-1]["model"] == "alpha-model"
    assert len(server.requests[-1]["messages"]) == 3


def test_ctrl_c_in_the_picker_cancels(tmux: Tmux, server: FakeOpenAI) -> None:
    tmux.start(aura_argv("run", "--executor", "lms", "--openai-endpoint", server.root,
                         "--prompt", "never mind", "--no-tui"))
    tmux.wait_for("Model for lms")
    tmux.keys("C-c")
    assert tmux.exit_code() == 130, tmux.screen()
    session = json.loads(run_aura("session", "latest", "--json").stdout)
    assert session["state"] == "cancelled"
    assert server.requests == []  # nothing was sent to the model
