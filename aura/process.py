"""Process supervision: the only place that spawns agent processes.

- Each child gets its own session (process group), so stopping it stops everything it
  started, and a terminal Ctrl-C reaches aura, not the agent, letting aura stop it in order.
- stdout and stderr are drained concurrently in large chunks and framed into lines here
  (``StreamReader.readline`` drops lines over its 64 KiB limit). A line longer than
  ``line_cap`` bytes is cut with a marker; bytes that are not UTF-8 are replaced.
- Stopping is a ladder: close stdin → grace → SIGTERM to the group → SIGKILL.
- "Exited" is decided by the leader's return code plus both pipes at EOF; a grandchild
  that keeps a pipe open does not hang aura (``Process.wait()`` alone would) and is
  stopped with the rest of the group when the leader is gone.
- No child outlives aura (see liveness.py for how, and docs/ARCHITECTURE.md for what holds
  where): each child carries a mark in its environment, and once it is over everything
  with its mark is killed, even processes that left its group; on Linux the agent dies
  with aura (PDEATHSIG) and escaped descendants re-parent to aura (subreaper). An atexit
  hook kills what is left when aura exits.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import itertools
import os
import shutil
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from aura import liveness
from aura.errors import ExecutorNotFound

READ_SIZE = 1 << 20
DEFAULT_LINE_CAP = 8 << 20  # bytes; configurable per run
TRUNCATION_MARKER = " …[aura: line truncated, {dropped} bytes dropped]"

LineHandler = Callable[[str, list[str]], None]
"""Called with ("stdout" | "stderr", complete decoded lines) for every chunk read."""

_live_groups: set[int] = set()
_serial = itertools.count(1)
_supervising: str | None = None  # this aura's mark, once it has started a child


def _supervise() -> str:
    """The first spawn makes aura a subreaper and fixes the prefix of its children's marks."""
    global _supervising
    if _supervising is None:
        liveness.become_subreaper()
        _supervising = liveness.own_mark()
    return _supervising


def _reap_at_exit() -> None:
    for pgid in list(_live_groups):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
    if _supervising is not None:
        liveness.kill_marked(_supervising)


atexit.register(_reap_at_exit)


def resolve_program(program: str, env: Mapping[str, str] | None = None) -> str:
    """The path of ``program`` (looked up on PATH unless it contains a slash).

    Raises ExecutorNotFound naming what was looked for and where."""
    if os.sep in program or (os.altsep and os.altsep in program):
        path = Path(program)
        if not path.exists():
            raise ExecutorNotFound(f"executable not found: {program}")
        if path.is_dir() or not os.access(path, os.X_OK):
            raise ExecutorNotFound(f"not an executable file: {program}")
        return program
    search = (env or os.environ).get("PATH", os.defpath)
    found = shutil.which(program, path=search)
    if found is None:
        raise ExecutorNotFound(f"executable not found on PATH: {program}")
    return found


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Child:
    """A running child process whose output is being pumped to a LineHandler."""

    def __init__(self, proc: asyncio.subprocess.Process, on_lines: LineHandler,
                 line_cap: int, mark: str = "") -> None:
        self.proc = proc
        self.pid = proc.pid
        self.mark = mark  # AURA_PROCESS_MARK of it and its descendants
        self._on_lines = on_lines
        self._line_cap = line_cap
        self._readers = asyncio.gather(
            self._pump(proc.stdout, "stdout"), self._pump(proc.stderr, "stderr"))
        # Readers cut short by a stop are expected; don't report them as unretrieved.
        self._readers.add_done_callback(lambda f: f.cancelled() or f.exception())
        _live_groups.add(self.pid)

    @classmethod
    async def spawn(cls, argv: Sequence[str], *, on_lines: LineHandler,
                    cwd: str | Path | None = None, env: Mapping[str, str] | None = None,
                    stdin: bytes | None = None, keep_stdin_open: bool = False,
                    line_cap: int = DEFAULT_LINE_CAP) -> Child:
        """Start ``argv`` (never through a shell) in its own process group.

        ``stdin`` bytes are written and stdin closed, unless ``keep_stdin_open`` is set
        (for protocols that talk over stdin); with neither, stdin is /dev/null."""
        if not argv:
            raise ExecutorNotFound("empty command")
        program = resolve_program(argv[0], env)
        if cwd is not None and not Path(cwd).is_dir():
            raise ExecutorNotFound(f"working directory does not exist: {cwd}")
        piped = stdin is not None or keep_stdin_open
        mark = f"{_supervise()}:{next(_serial)}"
        child_env = dict(env if env is not None else os.environ)
        child_env[liveness.MARK_VARIABLE] = mark
        try:
            proc = await asyncio.create_subprocess_exec(
                program, *argv[1:],
                stdin=asyncio.subprocess.PIPE if piped else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                cwd=cwd, env=child_env, start_new_session=True, limit=READ_SIZE,
                preexec_fn=liveness.die_with_parent_hook())
        except PermissionError:
            raise ExecutorNotFound(f"not an executable file: {program}") from None
        except OSError as exc:
            raise ExecutorNotFound(f"cannot start {program}: {exc.strerror}") from None
        child = cls(proc, on_lines, line_cap, mark)
        if stdin is not None:
            await child.write(stdin)
            if not keep_stdin_open:
                child.close_stdin()
        return child

    async def write(self, data: bytes) -> None:
        """Write to the child's stdin; a child that closed it is not an error here."""
        if self.proc.stdin is None or self.proc.stdin.is_closing():
            return
        try:
            self.proc.stdin.write(data)
            await self.proc.stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            pass

    def close_stdin(self) -> None:
        if self.proc.stdin is not None and not self.proc.stdin.is_closing():
            self.proc.stdin.close()

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode

    async def wait(self, drain: float = 1.0) -> int:
        """Wait for the child to exit and its output to be read, then stop leftovers.

        If the leader has exited but a grandchild still holds a pipe, wait ``drain``
        seconds for it, then stop the group: the run is over when the agent is."""
        while not self._readers.done():
            if self.proc.returncode is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(self._readers), drain)
                break
            await asyncio.wait({self._readers}, timeout=0.02)
        if not self._readers.done():
            await self._kill_group(term_timeout=0.5)
            liveness.kill_marked(self.mark)  # a holder of the pipe that left the group
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._readers), 2.0)
            # A process that left the group (setsid) may still hold the pipe: the agent
            # is over, so stop reading rather than wait for it.
            await self._abandon_readers()
        else:
            await self._readers
        # Process.wait() also waits for the pipes to close, which an escaped holder may
        # never do; the leader's return code is known once it has exited.
        code = self.proc.returncode if self.proc.returncode is not None \
            else await self.proc.wait()
        if group_alive(self.pid):
            await self._kill_group(term_timeout=0.5)
        self._kill_escaped()
        return code

    async def _abandon_readers(self) -> None:
        """Stop reading pipes that are still open (their holder escaped the group)."""
        if self._readers.done():
            return
        self._readers.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._readers
        self._close_transport()

    async def stop(self, grace: float = 1.0, term_timeout: float = 3.0) -> int:
        """Close stdin → wait ``grace`` → SIGTERM the group → SIGKILL; returns the code."""
        self.close_stdin()
        if self.proc.returncode is None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._exited(), grace)
        if self.proc.returncode is None or group_alive(self.pid):
            await self._kill_group(term_timeout)
        liveness.kill_marked(self.mark)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._readers), 2.0)
        await self._abandon_readers()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.proc.wait(), 2.0)
        self._kill_escaped()
        code = self.proc.returncode
        return code if code is not None else -signal.SIGKILL

    def _close_transport(self) -> None:
        # Close our ends of the pipes now, not when the loop is already gone (its
        # finaliser would then print "Event loop is closed").
        transport = getattr(self.proc, "_transport", None)
        if transport is not None:
            transport.close()

    def _kill_escaped(self) -> None:
        # What left the group (setsid, a double fork) still carries the mark.
        _live_groups.discard(self.pid)
        if liveness.kill_marked(self.mark):
            time.sleep(0.01)  # SIGKILL is not instant; then reap what came to us
        liveness.reap_orphans(_live_groups)

    async def _exited(self) -> None:
        while self.proc.returncode is None:
            await asyncio.sleep(0.02)

    async def _kill_group(self, term_timeout: float) -> None:
        # Signal the group by the leader's pid: os.getpgid() fails once the leader is
        # reaped, while other members may still be alive.
        for sig, timeout in ((signal.SIGTERM, term_timeout), (signal.SIGKILL, 2.0)):
            try:
                os.killpg(self.pid, sig)
            except ProcessLookupError:
                return
            except PermissionError:
                pass  # ambiguous (e.g. a setuid member): keep escalating
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            while loop.time() < deadline:
                liveness.reap_orphans(_live_groups)  # members re-parented to us
                if not group_alive(self.pid):
                    return
                await asyncio.sleep(0.02)

    async def _pump(self, stream: asyncio.StreamReader | None, name: str) -> None:
        if stream is None:
            return
        cap = self._line_cap
        on_lines = self._on_lines
        pending = b""
        dropped = 0  # bytes dropped from the current over-long line
        while True:
            chunk = await stream.read(READ_SIZE)
            if not chunk:
                break
            cut = chunk.rfind(b"\n")
            if cut < 0:
                pending += chunk
                if len(pending) > cap:
                    dropped += len(pending) - cap
                    pending = pending[:cap]
                continue
            head = pending + chunk[: cut + 1]
            pending = chunk[cut + 1 :]
            if dropped or len(head) > cap + 1:
                lines = _split_capped(head, cap, dropped)
                dropped = 0
            else:
                lines = head.decode("utf-8", "replace").split("\n")
                lines.pop()  # the empty string after the final newline
            on_lines(name, lines)
            if len(pending) > cap:
                dropped = len(pending) - cap
                pending = pending[:cap]
        if pending or dropped:
            text = pending.decode("utf-8", "replace")
            if dropped:
                text += TRUNCATION_MARKER.format(dropped=dropped)
            on_lines(name, [text])


def _split_capped(head: bytes, cap: int, dropped_first: int) -> list[str]:
    """Split complete lines, cutting any longer than ``cap`` bytes with a marker."""
    out = []
    parts = head.split(b"\n")
    parts.pop()
    for i, part in enumerate(parts):
        dropped = dropped_first if i == 0 else 0
        if len(part) > cap:
            dropped += len(part) - cap
            part = part[:cap]
        text = part.decode("utf-8", "replace")
        if dropped:
            text += TRUNCATION_MARKER.format(dropped=dropped)
        out.append(text)
    return out
