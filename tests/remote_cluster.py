"""A coordinator and workers as real `aura` processes on 127.0.0.1, for the remote tests.

Each process has its own AURA_HOME and writes its log to a file (so a chatty process never
blocks on a full pipe, and tests can check what was logged). The token travels in the
environment only.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .conftest import TIMEOUT_FACTOR, aura_argv, run_aura


def wait_for(predicate: Callable[[], Any], timeout: float, what: str,
             interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout * TIMEOUT_FACTOR
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout * TIMEOUT_FACTOR:g} s: {what}")
        time.sleep(interval)


class Proc:
    def __init__(self, name: str, argv: list[str], env: dict[str, str], log: Path,
                 cwd: Path) -> None:
        self.name = name
        self.log_path = log
        self._log = log.open("ab")
        self.popen = subprocess.Popen(argv, env=env, stdout=self._log, stderr=self._log,
                                      stdin=subprocess.DEVNULL, cwd=cwd)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_log(self, pattern: str, timeout: float = 20) -> re.Match[str]:
        return wait_for(lambda: re.search(pattern, self.log()), timeout,
                        f"{self.name} logging {pattern!r}; log:\n{self.log()[-3000:]}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10) -> int | None:
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
            try:
                self.popen.wait(timeout * TIMEOUT_FACTOR)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self._log.close()
        return self.popen.returncode


class Cluster:
    def __init__(self, root: Path, *, heartbeat: float = 0.25, offline: float = 2.0,
                 argv: Callable[..., list[str]] = aura_argv) -> None:
        self.root = root
        self.argv = argv  # how every process of the cluster runs aura
        self.token = "tok-" + secrets.token_hex(16)
        self.heartbeat = heartbeat
        self.offline = offline
        self.procs: list[Proc] = []
        self.url = ""
        self.coordinator: Proc | None = None
        self.cafile: str | None = None
        self.client_home = root / "client-home"
        self.client_home.mkdir(parents=True, exist_ok=True)

    def env(self, home: Path, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update({"AURA_HOME": str(home), "AURA_TOKEN": self.token, "NO_COLOR": "1"})
        if self.cafile:
            env["AURA_CAFILE"] = self.cafile
        env.update(extra)
        return env

    def start_coordinator(self, *extra: str, port: int = 0) -> str:
        home = self.root / "coord-home"
        home.mkdir(exist_ok=True)
        args = ["serve", "--listen", f"127.0.0.1:{port}",
                "--heartbeat-interval", str(self.heartbeat), "--offline-after",
                str(self.offline), *extra]
        proc = Proc("coordinator", self.argv(*args), self.env(home), self.root / "coord.log",
                    self.root)
        self.procs.append(proc)
        self.coordinator = proc
        marker = len(proc.log())
        match = wait_for(lambda: re.search(r"listening on (wss?://[\d.]+:\d+)",
                                           proc.log()[marker:]), 20,
                         f"coordinator listening; log:\n{proc.log()[-2000:]}")
        self.url = match.group(1)
        return self.url

    @property
    def coord_home(self) -> Path:
        return self.root / "coord-home"

    def start_worker(self, name: str, *extra: str, url: str | None = None,
                     allow_command: bool = True, wait: bool = True,
                     env: dict[str, str] | None = None, flag: str = "--coordinator"
                     ) -> Proc:
        home = self.root / f"{name}-home"
        home.mkdir(exist_ok=True)
        args = ["worker", flag, url or self.url, "--name", name, *extra]
        if allow_command:
            args.append("--allow-command")
        if self.cafile:
            args += ["--cafile", self.cafile]
        proc = Proc(name, self.argv(*args), self.env(home, **(env or {})),
                    self.root / f"{name}.log", self.root)
        self.procs.append(proc)
        if wait:
            self.wait_online(name)
        return proc

    def wait_online(self, name: str, timeout: float = 20) -> None:
        assert self.coordinator is not None
        count = len(re.findall(rf"worker {name} online", self.coordinator.log()))
        wait_for(lambda: len(re.findall(rf"worker {name} online",
                                        self.coordinator.log())) > count, timeout,
                 f"worker {name} online")

    def aura(self, *args: str, timeout: float = 60, **extra: str
             ) -> subprocess.CompletedProcess:
        if self.argv is not aura_argv:
            return subprocess.run(self.argv(*args), capture_output=True, text=True,
                                  env=self.env(self.client_home, **extra), cwd=self.root,
                                  timeout=timeout * TIMEOUT_FACTOR, stdin=subprocess.DEVNULL)
        return run_aura(*args, env=self.env(self.client_home, **extra), cwd=self.root,
                        timeout=timeout)

    def aura_bg(self, *args: str, name: str = "client", **extra: str) -> Proc:
        proc = Proc(name, self.argv(*args), self.env(self.client_home, **extra),
                    self.root / f"{name}.out", self.root)
        self.procs.append(proc)
        return proc

    def run_on(self, on: str, base_command: str, *extra: str, prompt: str = "go"
               ) -> subprocess.CompletedProcess:
        return self.aura("run", "--on", on, "--coordinator", self.url, "--executor", "custom",
                         "--base-command", base_command, "--prompt", prompt, "--json", *extra)

    def stored(self, session_id: str) -> dict[str, Any]:
        """The session as the coordinator's own store has it (read directly)."""
        done = run_aura("session", "show", session_id, "--json",
                        env={"AURA_HOME": str(self.coord_home)})
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    def workers(self) -> list[dict[str, Any]]:
        done = self.aura("workers", "--coordinator", self.url, "--json")
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    def close(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]
