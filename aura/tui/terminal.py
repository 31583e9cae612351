"""Holding the terminal while the TUI owns it, and giving it back on every way out: the
saved termios state, then (unless the app ended cleanly, when prompt_toolkit's teardown did
it) the escape sequences that leave the alternate screen, show the cursor and stop mouse
reporting. stderr is held meanwhile and printed after the terminal is back."""

from __future__ import annotations

import contextlib
import io
import os
import sys
from collections.abc import Iterator

RESET = ("\x1b[?1000l\x1b[?1002l\x1b[?1003l\x1b[?1006l\x1b[?1015l"  # mouse reporting off
         "\x1b[?2004l"  # bracketed paste off
         "\x1b[0m\x1b[?25h"  # attributes reset, cursor shown
         "\x1b[?1049l")  # back to the main screen


@contextlib.contextmanager
def held_terminal() -> Iterator[None]:
    """The terminal restored as it was when the block ends, however it ends."""
    import termios

    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    # Anything written to stderr while the screen is ours would tear it: keep it, print
    # it after the terminal is back.
    real_stderr, captured = sys.stderr, io.StringIO()
    sys.stderr = captured
    clean = False
    try:
        yield
        clean = True
    finally:
        sys.stderr = real_stderr
        with contextlib.suppress(termios.error):
            termios.tcsetattr(fd, termios.TCSADRAIN, saved)
        if not clean:
            with contextlib.suppress(OSError):
                os.write(sys.stdout.fileno(), RESET.encode())
        if captured.getvalue():
            real_stderr.write(captured.getvalue())
