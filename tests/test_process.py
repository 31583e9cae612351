"""Process supervision with real child processes."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from aura.errors import ExecutorNotFound
from aura.process import TRUNCATION_MARKER, Child, group_alive

from .conftest import TIMEOUT_FACTOR

PY = sys.executable


class Collector:
    def __init__(self) -> None:
        self.lines: dict[str, list[str]] = {"stdout": [], "stderr": []}

    def __call__(self, stream: str, lines: list[str]) -> None:
        self.lines[stream].extend(lines)


async def run_child(code: str, **kw: object) -> tuple[int, Collector]:
    sink = Collector()
    child = await Child.spawn([PY, "-c", code], on_lines=sink, **kw)  # type: ignore[arg-type]
    rc = await asyncio.wait_for(child.wait(), 30 * TIMEOUT_FACTOR)
    return rc, sink


def test_stdout_and_stderr_lines_arrive_with_the_exit_code() -> None:
    code = "import sys; print('a'); print('b', file=sys.stderr); print('c'); sys.exit(3)"
    rc, sink = asyncio.run(run_child(code))
    assert rc == 3
    assert sink.lines == {"stdout": ["a", "c"], "stderr": ["b"]}


def test_a_one_mebibyte_line_arrives_whole() -> None:
    code = "import sys; sys.stdout.write('x' * (1 << 20) + '\\nend\\n')"
    rc, sink = asyncio.run(run_child(code))
    assert rc == 0
    assert [len(x) for x in sink.lines["stdout"]] == [1 << 20, 3]


def test_a_line_over_the_cap_is_cut_with_a_marker_and_the_next_line_survives() -> None:
    code = "import sys; sys.stdout.write('y' * 300000 + '\\nnext\\n' + 'z' * 5000)"
    _rc, sink = asyncio.run(run_child(code, line_cap=1000))
    first, second, last = sink.lines["stdout"]
    assert first == "y" * 1000 + TRUNCATION_MARKER.format(dropped=299000)
    assert second == "next"
    assert last.startswith("z" * 1000) and "4000 bytes dropped" in last


def test_a_partial_last_line_is_kept() -> None:
    _rc, sink = asyncio.run(run_child("import sys; sys.stdout.write('no newline')"))
    assert sink.lines["stdout"] == ["no newline"]


def test_binary_garbage_is_replaced_not_fatal() -> None:
    code = "import sys; sys.stdout.buffer.write(b'ok \\xff\\xfe\\x00 bytes\\n\\xc3')"
    rc, sink = asyncio.run(run_child(code))
    assert rc == 0
    assert sink.lines["stdout"] == ["ok \ufffd\ufffd\x00 bytes", "\ufffd"]


def test_a_multibyte_character_split_across_reads_survives() -> None:
    code = ("import sys, time; b = 'é€'.encode(); sys.stdout.buffer.write(b[:1]); "
            "sys.stdout.flush(); time.sleep(0.1); sys.stdout.buffer.write(b[1:] + b'\\n')")
    _rc, sink = asyncio.run(run_child(code))
    assert sink.lines["stdout"] == ["é€"]


def test_a_stderr_flood_does_not_deadlock_stdout() -> None:
    code = ("import sys\nfor i in range(20000): sys.stderr.write('e' * 100 + '\\n')\n"
            "print('done')")
    rc, sink = asyncio.run(run_child(code))
    assert rc == 0 and sink.lines["stdout"] == ["done"] and len(sink.lines["stderr"]) == 20000


def test_stdin_bytes_are_delivered_and_closed() -> None:
    code = "import sys; print(sys.stdin.read().upper())"
    _rc, sink = asyncio.run(run_child(code, stdin=b"hello"))
    assert sink.lines["stdout"] == ["HELLO"]


def test_stdin_is_devnull_by_default() -> None:
    _rc, sink = asyncio.run(run_child("import sys; print(repr(sys.stdin.read()))"))
    assert sink.lines["stdout"] == ["''"]


def test_a_grandchild_holding_the_pipe_does_not_hang_and_is_stopped(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    code = (f"import subprocess, sys; p = subprocess.Popen([{PY!r}, '-c', "
            f"'import time; time.sleep(60)']); open({str(pidfile)!r}, 'w').write(str(p.pid)); "
            "print('leader done')")

    async def main() -> tuple[int, Collector, int]:
        sink = Collector()
        child = await Child.spawn([PY, "-c", code], on_lines=sink)
        rc = await asyncio.wait_for(child.wait(drain=0.2), 20 * TIMEOUT_FACTOR)
        return rc, sink, child.pid

    rc, sink, pgid = asyncio.run(main())
    assert rc == 0 and sink.lines["stdout"] == ["leader done"]
    assert not group_alive(pgid)


def test_stop_escalates_to_sigkill_for_a_child_that_ignores_sigterm() -> None:
    code = ("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            "print('ready', flush=True); time.sleep(60)")

    async def main() -> tuple[int, int]:
        ready = asyncio.Event()

        def on_lines(stream: str, lines: list[str]) -> None:
            ready.set()

        child = await Child.spawn([PY, "-c", code], on_lines=on_lines)
        await asyncio.wait_for(ready.wait(), 20 * TIMEOUT_FACTOR)
        rc = await child.stop(grace=0.1, term_timeout=0.3)
        return rc, child.pid

    rc, pgid = asyncio.run(main())
    assert rc == -signal.SIGKILL
    assert not group_alive(pgid)


def test_cancelling_the_waiter_then_stopping_leaves_no_process() -> None:
    async def main() -> int:
        child = await Child.spawn([PY, "-c", "import time; time.sleep(60)"],
                                  on_lines=lambda s, lines: None)
        waiter = asyncio.create_task(child.wait())
        await asyncio.sleep(0.2)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        await child.stop(grace=0.1)
        return child.pid

    pgid = asyncio.run(main())
    assert not group_alive(pgid)


def test_missing_and_non_executable_programs_are_clear_errors(tmp_path: Path) -> None:
    script = tmp_path / "agent.sh"
    script.write_text("#!/bin/sh\necho hi\n")

    async def spawn(argv: list[str]) -> None:
        child = await Child.spawn(argv, on_lines=lambda s, lines: None)
        await child.wait()

    with pytest.raises(ExecutorNotFound, match="executable not found on PATH: no-such-agent"):
        asyncio.run(spawn(["no-such-agent"]))
    with pytest.raises(ExecutorNotFound, match=f"executable not found: {tmp_path}/nope"):
        asyncio.run(spawn([str(tmp_path / "nope")]))
    with pytest.raises(ExecutorNotFound, match=f"not an executable file: {script}"):
        asyncio.run(spawn([str(script)]))
    os.chmod(script, 0o755)
    asyncio.run(spawn([str(script)]))


def test_a_holder_that_escaped_the_group_does_not_hang_the_wait(tmp_path: Path) -> None:
    code = ("import subprocess, sys; subprocess.Popen(['setsid', 'sleep', '30']); "
            "print('leader done')")

    async def main() -> tuple[int, Collector]:
        sink = Collector()
        child = await Child.spawn([PY, "-c", code], on_lines=sink)
        rc = await asyncio.wait_for(child.wait(drain=0.2), 20 * TIMEOUT_FACTOR)
        return rc, sink

    rc, sink = asyncio.run(main())
    assert rc == 0 and sink.lines["stdout"] == ["leader done"]
    # The escaped sleep left aura's reach on purpose; clean it up here.
    subprocess.run(["pkill", "-f", "^sleep 30$"], check=False)


def test_a_zombie_is_not_alive() -> None:
    import os as _os
    import time as _time

    from aura.liveness import is_alive, process_start_time

    pid = _os.fork()
    if pid == 0:
        _os._exit(0)
    started = None
    for _ in range(200):  # until the child has exited (a zombie: not reaped yet)
        with open(f"/proc/{pid}/stat") as fh:
            state = fh.read().rsplit(")", 1)[1].split()[0]
        if state == "Z":
            break
        started = process_start_time(pid) or started
        _time.sleep(0.01)
    try:
        assert not is_alive(pid, started)
    finally:
        _os.waitpid(pid, 0)
