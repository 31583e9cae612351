"""Shared parts of the parsers for agents that print one JSON event per line (codex exec
--json, opencode run --format json, copilot --output-format json).

Contract: ``JsonEventParser.feed(line)`` never raises. A line that is not a JSON object,
or an event of a known type whose fields are not what the parser expects, becomes a
``raw`` entry holding the line (``aura.executors.events.raw_entry``); an event type the
subclass does not know becomes a ``raw`` entry too. Tool calls are announced with
``tool_start`` (status running) and closed with ``tool_end`` (same id, tool, action and
target); ``finish`` closes the ones the agent never finished, as errors, so no call stays
"running" in the store.
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
from aura.executors.events import (
    SHAPE_ERRORS,
    UNFINISHED_CALL,
    json_object,
    raw_entry,
    relativizer,
)
from aura.process import Child

# Entry kinds as plain strings: the parsers run once per agent line, and an enum member's
# .value costs more than the dict it goes into.
ASSISTANT = EntryKind.ASSISTANT_MESSAGE.value
THINKING = EntryKind.THINKING.value
TOOL_CALL = EntryKind.TOOL_CALL.value
ERROR = EntryKind.ERROR.value
SYSTEM = EntryKind.SYSTEM.value
USAGE = EntryKind.USAGE.value


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


class JsonEventParser(LineParser):
    """One JSON object per line; subclasses implement ``handle(event, line)``."""

    def __init__(self, cwd: str | None = None) -> None:
        super().__init__()
        self.target = relativizer(cwd)
        self.open_calls: dict[str, Entry] = {}  # tool calls started and not yet ended

    def feed(self, line: str) -> list[Entry]:
        text = line.strip()
        if not text:
            return []
        event = json_object(text)
        if event is None:
            return [raw_entry(line)]
        try:
            return self.handle(event, line)
        except SHAPE_ERRORS:
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
        return [self.tool_end(call_id, "error", output=UNFINISHED_CALL)
                for call_id in list(self.open_calls)]


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
