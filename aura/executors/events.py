"""What every agent-output parser shares, whatever the protocol: the one JSON object of a
line (``json_object``), the ``raw`` entry that keeps a line no parser understood
(``raw_entry``), the errors that mean "an event in a shape this parser does not know"
(``SHAPE_ERRORS``), the output of a tool call that never finished (``UNFINISHED_CALL``),
and paths shown relative to the agent's working directory (``Relativizer``).

Hostile output is contained here once for every parser: ``json_object`` takes only strict
JSON (no ``NaN``/``Infinity``, no number that overflows a float) nested at most
``MAX_DEPTH`` deep, so what a parser keeps can always be encoded again; ``event_type``
reads a ``type``/``kind`` field only when it is a string (a list there is not an event
type, and not a crash); ``aura_own`` names the entries only aura may write (its state
changes, its summary, its review verdicts…), which no agent output may pass for.

Used by the claude-style stream-json parser (streamjson.py), the JSON-event parsers of
codex, opencode and copilot (jsonevents.py) and the ACP update translator (acp/entries.py).
"""

from __future__ import annotations

import functools
import json
import math
import os
from collections.abc import Callable
from typing import Any, cast

from aura.contracts import Entry, EntryKind
from aura.recorder import USAGE_LIMIT

RAW = EntryKind.RAW.value

# The output of a tool call still open when the agent stopped (it ends as an error, so no
# call stays "running" in the store).
UNFINISHED_CALL = "no result: the agent stopped first"

# Errors a handler may raise on an event whose shape differs from what was recorded
# (another version of the agent): the line is kept as raw instead. RecursionError: a
# handler that walks or re-encodes a value nested deeper than the stack allows.
SHAPE_ERRORS = (KeyError, TypeError, AttributeError, ValueError, IndexError, RecursionError)

# Deeper than any event an agent prints (claude's run about 8 deep); far enough below
# Python's recursion limit that encoding, decoding and rendering the value again cannot
# overflow the stack wherever that happens.
MAX_DEPTH = 64

# Entry kinds only aura writes: its state changes and its run summary. An agent line of
# such a kind would render as aura's own status line and stand in the --json stream
# before the real summary.
AURA_KINDS = frozenset({"state", "summary"})
# ``system`` entries aura writes carry one of these as ``data.type`` (a review verdict is
# read back from the store; changes render as aura's change summary).
AURA_SYSTEM_TYPES = frozenset({"review", "changes", "saved", "workspace", "script",
                               "check"})



def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e400
        raise ValueError(f"{text} overflows a float")
    return value


# The C scanner straight away: json.loads adds two regex whitespace scans per line.
# scan_once is set by JSONDecoder.__init__ but not declared in its stubs. Strict: NaN,
# Infinity and floats that overflow are not JSON, so a line holding one is not an event.
_strict = json.JSONDecoder(parse_constant=_no_constant, parse_float=_finite_float)
_scan = cast(Callable[[str, int], tuple[Any, int]],
             _strict.scan_once)  # type: ignore[attr-defined]


def json_object(text: str) -> dict[str, Any] | None:
    """The JSON object that is the whole of ``text`` (a stripped line), else None: not
    JSON, not strict JSON, trailing text, or nested deeper than ``MAX_DEPTH``."""
    if not text.startswith("{"):
        return None
    try:
        obj, end = _scan(text, 0)
    except (ValueError, StopIteration, RecursionError):
        return None
    # Trailing text after the object is not an event.
    if end != len(text) or not isinstance(obj, dict):
        return None
    # Each level takes an opening bracket, so a short line (most are) cannot be too deep,
    # nor can one with few brackets: only the rest is walked.
    if len(text) > 2 * MAX_DEPTH and text.count("{") + text.count("[") > MAX_DEPTH and \
            too_deep(obj):
        return None
    return obj


def strict_loads(text: str) -> Any:
    """``text`` (a JSON document inside an event, like a tool call's arguments) decoded as
    strictly as ``json_object`` decodes a line; ValueError when it is not."""
    try:
        value = _strict.decode(text)
    except RecursionError:
        raise ValueError("JSON nested too deep") from None
    if too_deep(value):
        raise ValueError("JSON nested too deep")
    return value


def native_id(value: Any) -> str | None:
    """An agent's own session id as aura keeps it: a short printable string (an id with
    control characters or lone surrogates could not be stored or shown), else None."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if type(value) is str and value and len(value) <= 256 and value.isprintable():
        return value
    return None


def too_deep(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether ``value`` nests lists and dicts more than ``limit`` deep (walked without
    recursion, so any depth is safe to ask about)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(item, dict):
            stack.extend((child, depth + 1) for child in item.values()
                         if isinstance(child, (dict, list)))
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item
                         if isinstance(child, (dict, list)))
    return False


def event_type(obj: dict[str, Any], key: str = "type") -> str | None:
    """``obj[key]`` when it is a string: the event type to dispatch on (a list or object
    there is an unknown event, never an unhashable key)."""
    value = obj.get(key)
    return value if type(value) is str else None


def usage_number(value: Any) -> bool:
    """Whether ``value`` is a usage figure: a finite int or float (not a bool) within
    ``USAGE_LIMIT``."""
    if type(value) is int:
        return -USAGE_LIMIT <= value <= USAGE_LIMIT
    if type(value) is float:
        return math.isfinite(value) and abs(value) <= USAGE_LIMIT
    return False


def aura_own(entry: dict[str, Any]) -> bool:
    """Whether ``entry`` has a shape only aura itself writes (see ``AURA_KINDS`` and
    ``AURA_SYSTEM_TYPES``): from an agent it is a forgery."""
    kind = entry.get("kind")
    if type(kind) is str and kind in AURA_KINDS:
        return True
    if kind == "system":
        data = entry.get("data")
        return isinstance(data, dict) and event_type(data) in AURA_SYSTEM_TYPES
    return False


def forged_entry(line: str, kind: str) -> Entry:
    """An agent line shaped like one of aura's own entries, kept as the agent printed it
    (a raw line) and said to be the agent's."""
    return {"kind": RAW, "stream": "stdout", "text": line.rstrip("\r\n"),
            "data": {"refused": f"the agent printed an entry of aura's own kind {kind!r}"}}


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
