"""What every agent-output parser shares, whatever the protocol: the one JSON object of a
line (``json_object``), the ``raw`` entry that keeps a line no parser understood
(``raw_entry``), the errors that mean "an event in a shape this parser does not know"
(``SHAPE_ERRORS``), the output of a tool call that never finished (``UNFINISHED_CALL``),
and paths shown relative to the agent's working directory (``Relativizer``).

Used by the claude-style stream-json parser (streamjson.py), the JSON-event parsers of
codex, opencode and copilot (jsonevents.py) and the ACP update translator (acp/entries.py).
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable
from typing import Any, cast

from aura.contracts import Entry, EntryKind

RAW = EntryKind.RAW.value

# The output of a tool call still open when the agent stopped (it ends as an error, so no
# call stays "running" in the store).
UNFINISHED_CALL = "no result: the agent stopped first"

# Errors a handler may raise on an event whose shape differs from what was recorded
# (another version of the agent): the line is kept as raw instead.
SHAPE_ERRORS = (KeyError, TypeError, AttributeError, ValueError, IndexError)

# The C scanner straight away: json.loads adds two regex whitespace scans per line.
# scan_once is set by JSONDecoder.__init__ but not declared in its stubs.
_scan = cast(Callable[[str, int], tuple[Any, int]],
             json.JSONDecoder().scan_once)  # type: ignore[attr-defined]


def json_object(text: str) -> dict[str, Any] | None:
    """The JSON object that is the whole of ``text`` (a stripped line), else None."""
    if not text.startswith("{"):
        return None
    try:
        obj, end = _scan(text, 0)
    except (ValueError, StopIteration):
        return None
    # Trailing text after the object is not an event.
    return obj if end == len(text) and isinstance(obj, dict) else None


def raw_entry(line: str) -> Entry:
    """A stdout line kept as it came (without its line ending): not JSON, not an object,
    or an event no parser knows."""
    return {"kind": RAW, "stream": "stdout", "text": line.rstrip("\r\n")}


class Relativizer:
    """Paths inside the working directory as the user would type them (``hello.txt``),
    anything else (the directory itself included) unchanged. Both the directory as given and
    its real path count (an agent may report either). The directory's forms are worked
    out once, since parsers call this for every file a tool touches."""

    __slots__ = ("bases",)

    def __init__(self, cwd: str | None) -> None:
        bases: list[str] = []
        if cwd and os.path.isabs(cwd):
            for root in (os.path.normpath(cwd), os.path.realpath(cwd)):
                base = root.rstrip(os.sep) + os.sep
                if base not in bases:
                    bases.append(base)
        self.bases = tuple(bases)

    def __call__(self, path: str) -> str:
        if not path or not self.bases or not os.path.isabs(path):
            return path
        norm = os.path.normpath(path)
        for base in self.bases:
            if norm.startswith(base) and len(norm) > len(base):
                return norm[len(base):]
        return path


@functools.lru_cache(maxsize=64)
def relativizer(cwd: str | None) -> Relativizer:
    """The Relativizer of ``cwd``, built once per directory (realpath is a system call
    per path component)."""
    return Relativizer(cwd)
