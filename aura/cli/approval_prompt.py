"""Plain mode's approval prompt: a request shown on stderr, answered ``[y/a/N]`` on the
terminal (y: allow once, a: allow for this session, anything else: deny, then an optional
message for the agent).

The terminal is read through the event loop (``add_reader``), never by a blocking read,
so the run goes on streaming and an answer from another terminal (`aura approve`) ends
the question at once. Several requests at a time are asked one after the other.
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import IO, Any

ANSWERS = {"y": "allow", "yes": "allow", "a": "allow_session", "always": "allow_session"}


class TerminalPerson:
    """The person at the terminal (stdin a TTY, stderr a TTY)."""

    def __init__(self, fd: int | None = None, err: IO[str] | None = None) -> None:
        self.fd = sys.stdin.fileno() if fd is None else fd
        self.err = err or sys.stderr
        self._lock: asyncio.Lock | None = None
        self._buffer = b""
        self._eof = False

    async def answer(self, approval: Any) -> Any:
        from aura.approvals import Choice
        from aura.service.approvals import Answer, who

        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            self._discard_typeahead()
            self._say(self._question(approval))
            try:
                line = await self._readline()
                if line is None:
                    self._say("\n[aura] the terminal closed; waiting for `aura approve` "
                              "or the timeout\n")
                    return None
                choice = Choice(ANSWERS.get(line.strip().lower(), "deny"))
                message = None
                if choice is Choice.DENY:
                    self._say("message for the agent (Enter for none): ")
                    message = (await self._readline() or "").strip() or None
            except asyncio.CancelledError:
                self._say("\n")  # answered elsewhere: the outcome entry says by whom
                raise
            return Answer(choice, message, who("tty"))

    def _question(self, approval: Any) -> str:
        from aura.cli.render import Painter, approval_detail, use_color

        paint = Painter(use_color(self.err))
        short = approval.id[:8]
        lines = [paint(f"[aura] the agent asks ({approval.kind.value}): {approval.title}",
                       "yellow", "bold"), *approval_detail(approval.to_json()),
                 paint(f"  (or from another terminal: aura approve {short} / aura deny "
                       f"{short})", "dim")]
        return "\n".join(lines) + "\nallow? y once, a for this session, N deny [y/a/N] "

    def _say(self, text: str) -> None:
        self.err.write(text)
        self.err.flush()

    def _discard_typeahead(self) -> None:
        # Keys pressed before the question are not an answer to it.
        import termios

        self._buffer = b""
        try:
            termios.tcflush(self.fd, termios.TCIFLUSH)
        except termios.error:
            pass  # not a terminal after all: nothing was typed ahead there

    async def _readline(self) -> str | None:
        """One line from the terminal, None at end of input."""
        while b"\n" not in self._buffer:
            if self._eof:
                return None
            chunk = await self._read()
            if not chunk:
                self._eof = True
                if not self._buffer:
                    return None
                break
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.decode(errors="replace")

    async def _read(self) -> bytes:
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()

        def readable() -> None:
            if not ready.done():
                ready.set_result(None)

        loop.add_reader(self.fd, readable)
        try:
            await ready
        finally:
            loop.remove_reader(self.fd)
        try:
            return os.read(self.fd, 4096)
        except OSError:
            return b""  # the terminal went away (EIO after hangup)


def terminal_person(as_json: bool) -> TerminalPerson | None:
    """Someone to ask on this terminal: plain mode with stdin and stderr a TTY."""
    if as_json or not (sys.stdin.isatty() and sys.stderr.isatty()):
        return None
    return TerminalPerson()
