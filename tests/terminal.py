"""Drive a real terminal program in tmux: start it, type, read the screen.

Each ``Tmux`` runs its own tmux server (a private socket name), so tests never see the
user's sessions and can run side by side. Panes stay after the program exits
(``remain-on-exit``) so a test can read the last screen and the exit status.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from .conftest import TIMEOUT_FACTOR


def available() -> bool:
    return shutil.which("tmux") is not None


class Tmux:
    def __init__(self, tmp_path: Path, width: int = 200, height: int = 50) -> None:
        self.name = f"aura-test-{uuid.uuid4().hex[:12]}"
        self.width = width
        self.height = height
        self.config = tmp_path / f"{self.name}.conf"
        self.config.write_text("set -g remain-on-exit on\nset -g history-limit 5000\n"
                               "set -g escape-time 0\n")

    def _tmux(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(["tmux", "-L", self.name, "-f", str(self.config), *args],
                              capture_output=True, text=True, check=check, timeout=30)

    def start(self, command: Sequence[str] | str, *, env: Mapping[str, str] | None = None,
              cwd: str | Path | None = None) -> None:
        """Run ``command`` in a fresh pane of the given size."""
        line = command if isinstance(command, str) else shlex.join(command)
        if env:
            # Through env(1), not `new-session -e`: tmux replaces PATH with the client's.
            line = shlex.join(["env", *(f"{k}={v}" for k, v in env.items())]) + " " + line
        args = ["new-session", "-d", "-x", str(self.width), "-y", str(self.height)]
        if cwd is not None:
            args += ["-c", str(cwd)]
        self._tmux(*args, line)

    def send(self, *keys: str) -> None:
        """tmux key names (``Enter``, ``Tab``, ``C-c``, ``Escape``) or text."""
        self._tmux("send-keys", *keys)

    def type(self, text: str) -> None:
        """Literal text (no key-name lookup)."""
        self._tmux("send-keys", "-l", text)

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p").stdout

    def wait_for(self, check: str | Callable[[str], bool], timeout: float = 15) -> str:
        """The screen once it contains ``check`` (or satisfies it); AssertionError with the
        last screen after ``timeout`` seconds (scaled by AURA_TEST_TIMEOUT_FACTOR)."""
        test = (lambda s: check in s) if isinstance(check, str) else check
        deadline = time.monotonic() + timeout * TIMEOUT_FACTOR
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen()
            if test(screen):
                return screen
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {check!r}; screen:\n{screen}")

    def dead(self) -> tuple[bool, int | None]:
        """(whether the program exited, its exit status)."""
        out = self._tmux("display-message", "-p", "#{pane_dead} #{pane_dead_status}").stdout
        dead, _, status = out.strip().partition(" ")
        return dead == "1", int(status) if status.strip().lstrip("-").isdigit() else None

    def wait_exit(self, timeout: float = 15) -> int | None:
        deadline = time.monotonic() + timeout * TIMEOUT_FACTOR
        while time.monotonic() < deadline:
            dead, status = self.dead()
            if dead:
                return status
            time.sleep(0.1)
        raise AssertionError(f"program did not exit; screen:\n{self.screen()}")

    def close(self) -> None:
        self._tmux("kill-server", check=False)
