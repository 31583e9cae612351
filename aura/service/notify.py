"""Telling people: the events aura announces (an approval waits, a run ended) and the
runner of the user's ``notify_command``, which receives each event as one JSON object on
stdin (to wire notify-send, ntfy or a chat hook). The terminal bell is the CLI's
(aura.cli.bell); it gets the same events through ``Notifier``'s ``terminal``.

A notification never fails a run: the command runs detached with a short timeout, and
what goes wrong with it (not found, a non-zero exit, too slow) is logged once."""

from __future__ import annotations

import json
import logging
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from aura.recorder import utc_now

Event = dict[str, Any]
Listener = Callable[[Event], None]
RUN_ENDED = "run.ended"
APPROVAL_WAITING = "approval.waiting"
COMMAND_TIMEOUT = 10.0  # seconds a notify_command may take before it is killed
log = logging.getLogger("aura.notify")


def run_ended(session: str, state: str, exit_code: int, *, duration: float,
              error: str | None = None, usage: Mapping[str, float] | None = None) -> Event:
    return {"event": RUN_ENDED, "at": utc_now(), "session": session, "state": state,
            "exit_code": exit_code, "duration_s": round(duration, 3), "error": error,
            "usage": dict(usage or {})}


def approval_waiting(session: str, approval: str, kind: str, title: str) -> Event:
    return {"event": APPROVAL_WAITING, "at": utc_now(), "session": session,
            "approval": approval, "kind": kind, "title": title}


def event_text(event: Mapping[str, Any]) -> str:
    """One short line for a desktop notification."""
    short = str(event.get("session", ""))[:8]
    if event.get("event") == APPROVAL_WAITING:
        return f"aura: session {short} asks: {event.get('title', '')}"
    return f"aura: session {short} {event.get('state', '')}"


class Notifier:
    """Hands every event to the terminal listener and the configured command."""

    def __init__(self, command: object = None, terminal: Listener | None = None,
                 timeout: float = COMMAND_TIMEOUT) -> None:
        self.argv = _argv(command)
        self.terminal = terminal
        self.timeout = timeout
        self._complained = False

    @classmethod
    def from_config(cls, config: Mapping[str, Any], terminal: Listener | None = None
                    ) -> Notifier:
        return cls(config.get("notify_command"), terminal)

    def __call__(self, event: Event) -> None:
        if self.terminal is not None:
            try:
                self.terminal(event)
            except OSError:  # the terminal went away: nobody to ring for
                self.terminal = None
        if self.argv is None:
            return
        if not self.argv:
            return self._complain("notify_command must be a command string or a list of "
                                  "strings; nothing was run")
        try:
            proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                    start_new_session=True)
        except OSError as exc:
            return self._complain(f"notify_command could not start: {exc}")
        # Written here, not by the thread: an event is far smaller than a pipe's buffer,
        # and the command must get it even when aura exits right after (the thread dies
        # with aura; the command, in its own session, lives on).
        assert proc.stdin is not None
        try:
            proc.stdin.write(json.dumps(event).encode() + b"\n")
            proc.stdin.close()
        except OSError:  # it exited without reading: its exit status says the rest
            pass
        threading.Thread(target=self._reap, args=(proc,), daemon=True).start()

    def _reap(self, proc: subprocess.Popen[bytes]) -> None:
        try:
            code = proc.wait(self.timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            return self._complain(f"notify_command took over {self.timeout:g} s; killed")
        if code != 0:
            self._complain(f"notify_command exited {code}")

    def _complain(self, message: str) -> None:
        if not self._complained:
            self._complained = True
            log.warning("aura: %s (further failures are not reported)", message)


def _argv(command: object) -> list[str] | None:
    """The command's argv: a string runs through the shell; [] when it is malformed."""
    if command is None or command == "":
        return None
    if isinstance(command, str):
        return ["/bin/sh", "-c", command]
    if isinstance(command, Sequence) and command and \
            all(isinstance(c, str) for c in command):
        return list(command)
    return []
