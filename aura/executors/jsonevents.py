"""Shared parts of the parsers for agents that print one JSON event per line (codex exec
--json, opencode run --format json, copilot --output-format json).

Contract: ``JsonEventParser.feed(line)`` never raises. A line that is not a JSON object,
or an event of a known type whose fields are not what the parser expects, becomes a
``raw`` entry holding the line; an event type the subclass does not know becomes a ``raw``
entry too. Tool calls are announced with ``tool_start`` (status running) and closed with
``tool_end`` (same id, tool, action and target); ``finish`` closes the ones the agent never
finished, as errors, so no call stays "running" in the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from typing import Any

from aura.contracts import Entry, EntryKind
from aura.executors.base import LineParser
from aura.process import Child

# Entry kinds as plain strings: the parsers run once per agent line, and an enum member's
# .value costs more than the dict it goes into.
ASSISTANT = EntryKind.ASSISTANT_MESSAGE.value
THINKING = EntryKind.THINKING.value
TOOL_CALL = EntryKind.TOOL_CALL.value
ERROR = EntryKind.ERROR.value
SYSTEM = EntryKind.SYSTEM.value
USAGE = EntryKind.USAGE.value
RAW = EntryKind.RAW.value

# Errors a handler may raise on an event whose shape differs from what was recorded
# (another version of the agent): the line is kept as raw instead.
_SHAPE_ERRORS = (KeyError, TypeError, AttributeError, ValueError, IndexError)


def raw_entry(line: str) -> Entry:
    return {"kind": RAW, "stream": "stdout", "text": line.rstrip("\r\n")}


class Relativizer:
    """Paths inside the working directory as the user would type them (``hello.txt``),
    anything else unchanged; the directory's forms are worked out once, since parsers call
    this for every file a tool touches."""

    def __init__(self, cwd: str | None) -> None:
        bases: list[str] = []
        if cwd and os.path.isabs(cwd):
            for base in (os.path.normpath(cwd), os.path.realpath(cwd)):
                if base not in bases:
                    bases.append(base.rstrip(os.sep) + os.sep)
        self.bases = tuple(bases)

    def __call__(self, path: str) -> str:
        if not path or not self.bases or not os.path.isabs(path):
            return path
        norm = os.path.normpath(path)
        for base in self.bases:
            if norm.startswith(base) and len(norm) > len(base):
                return norm[len(base):]
        return path


def as_text(value: Any) -> str:
    """Tool output as text: strings as they are, anything else as compact JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def patch_files(patch: str) -> list[tuple[str, str]]:
    """(kind, path) of each file in an apply_patch text (``*** Add File: x``)."""
    files = []
    for line in patch.splitlines():
        for marker, kind in (("*** Add File: ", "add"), ("*** Update File: ", "update"),
                             ("*** Delete File: ", "delete")):
            if line.startswith(marker):
                files.append((kind, line[len(marker):].strip()))
    return files


# The per-line path: raw_decode skips json.loads' wrapper and whitespace regexes (the line
# is stripped already).
_raw_decode = json.JSONDecoder().raw_decode


class JsonEventParser(LineParser):
    """One JSON object per line; subclasses implement ``handle(event, line)``."""

    def __init__(self, cwd: str | None = None) -> None:
        super().__init__()
        self.cwd = cwd
        self.target = Relativizer(cwd)
        self.open_calls: dict[str, Entry] = {}  # tool calls started and not yet ended

    def feed(self, line: str) -> list[Entry]:
        text = line.strip()
        if not text:
            return []
        try:
            event, end = _raw_decode(text)
        except ValueError:
            return [raw_entry(line)]
        # Trailing text after the object, or a non-object, is not an event.
        if end != len(text) or not isinstance(event, dict):
            return [raw_entry(line)]
        try:
            return self.handle(event, line)
        except _SHAPE_ERRORS:
            return [raw_entry(line)]

    def handle(self, event: dict[str, Any], line: str) -> list[Entry]:
        raise NotImplementedError

    def tool_start(self, call_id: str, tool: str, action: str, target: str,
                   **extra: Any) -> Entry:
        entry: Entry = {"kind": TOOL_CALL, "id": call_id, "tool": tool,
                        "action": action, "target": target, "status": "running"}
        for key, value in extra.items():
            if value is not None:
                entry[key] = value  # type: ignore[literal-required]
        self.open_calls[call_id] = entry
        return dict(entry)  # type: ignore[return-value]

    def tool_end(self, call_id: str, status: str, *, tool: str = "", action: str = "other",
                 target: str = "", output: str | None = None, **extra: Any) -> Entry:
        """Close a call; identity comes from its start when there was one (a target the
        start did not know yet, like a web search's query, is filled in)."""
        started = self.open_calls.pop(call_id, None)
        entry: Entry = {"kind": TOOL_CALL, "id": call_id,
                        "tool": started["tool"] if started else tool,
                        "action": started["action"] if started else action,
                        "target": (started["target"] or target) if started else target,
                        "status": status}
        if output is not None:
            entry["output"] = output
        for key, value in extra.items():
            if value is not None:
                entry[key] = value  # type: ignore[literal-required]
        if started is not None and "data" in started and "data" not in entry:
            entry["data"] = started["data"]
        return entry

    def finish(self) -> list[Entry]:
        ended = [self.tool_end(call_id, "error", output="no result: the agent stopped first")
                 for call_id in list(self.open_calls)]
        return ended


async def interrupt_then_stop(child: Child, grace: float = 2.0) -> None:
    """Ctrl-C for an agent in its own process group: SIGINT to the group, as a terminal
    sends it (an npm launcher and the agent binary it started both get it); a second one
    halfway through ``grace`` (agents that abort the turn on the first and exit on the
    second, like copilot); then the usual stop ladder."""
    loop = asyncio.get_running_loop()
    for wait in (grace / 2, grace / 2):
        if child.returncode is not None:
            break
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child.pid, signal.SIGINT)
        deadline = loop.time() + wait
        while child.returncode is None and loop.time() < deadline:
            await asyncio.sleep(0.02)
    await child.stop(grace=0.5)
