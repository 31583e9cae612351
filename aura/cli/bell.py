"""The terminal part of being told: a bell, and an OSC 9 desktop notification where the
terminal is not dumb, on the terminal (stderr) that started the run, when an approval
waits or the run ends. The events and the ``notify_command`` are aura.service.notify's."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import IO, Any

BELL = "\a"


def osc9(text: str) -> str:
    """An OSC 9 notification; control characters are dropped (they would end it early
    or reach the terminal as commands)."""
    clean = "".join(c for c in text if c.isprintable())[:200]
    return f"\x1b]9;{clean}\x1b\\"


def terminal_bell(stream: IO[str] = sys.stderr, *,
                  before: Callable[[dict[str, Any]], None] | None = None
                  ) -> Callable[[dict[str, Any]], None] | None:
    """A listener ringing on ``stream``, or None when it is not a terminal. ``before``
    runs first (the plain view clears its ticker)."""
    if not stream.isatty():
        return None
    fancy = os.environ.get("TERM", "dumb") not in ("", "dumb")

    def ring(event: dict[str, Any]) -> None:
        from aura.service.notify import event_text

        if before is not None:
            before(event)
        stream.write(BELL + (osc9(event_text(event)) if fancy else ""))
        stream.flush()

    return ring
