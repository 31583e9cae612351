"""Long output through a pager the way git does: on a terminal only, ``$AURA_PAGER``, then
``$PAGER``, then ``less -FRX`` (quits when it fits, keeps colours, leaves the text on the
screen). An empty or ``cat`` pager means none."""

from __future__ import annotations

import contextlib
import os
import shlex
import subprocess
import sys
from collections.abc import Iterator
from typing import IO


def pager_command() -> list[str] | None:
    for name in ("AURA_PAGER", "PAGER"):
        if name in os.environ:
            value = os.environ[name].strip()
            return None if value in ("", "cat") else shlex.split(value)
    return ["less", "-FRX"]


@contextlib.contextmanager
def paged(enabled: bool) -> Iterator[IO[str]]:
    """A stream to write the output to: the pager's stdin when ``enabled`` and stdout is a
    terminal and a pager can be started, else stdout itself."""
    argv = pager_command() if enabled and sys.stdout.isatty() else None
    proc = None
    if argv:
        env = dict(os.environ)
        env.setdefault("LESS", "FRX")  # as git: a bare `less` from $PAGER keeps colours
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.PIPE, env=env, text=True,
                                    encoding="utf-8", errors="replace")
        except OSError:
            proc = None  # no such pager: print as if there were none
    if proc is None or proc.stdin is None:
        yield sys.stdout
        return
    try:
        yield proc.stdin
    except BrokenPipeError:
        pass  # the user quit the pager before the end
    finally:
        with contextlib.suppress(BrokenPipeError, OSError):
            proc.stdin.close()
        while True:
            try:
                proc.wait()
                break
            except KeyboardInterrupt:  # Ctrl-C is the pager's (less handles it)
                continue
