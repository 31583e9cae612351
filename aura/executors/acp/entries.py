"""ACP ``session/update`` notifications → normalized entries (no I/O, one instance per turn).

- ``agent_message_chunk`` / ``agent_thought_chunk`` are coalesced: text accumulates until
  an update of another kind arrives, the message id changes, or the turn ends, so a reply
  streamed in forty chunks is one ``assistant_message`` (or ``thinking``) entry.
- ``tool_call`` / ``tool_call_update`` become a ``tool_call`` start entry (status running)
  and an end entry (ok/error) with the same id, tool, action and target. Agents fill in a
  call's details over several updates (opencode sends the path only in the second one), so
  the start entry waits until the call has a target, runs, or finishes.
- ``plan`` → a ``todo`` tool call with the checklist as output.
- Usage: per-model-call figures in ``_meta.usage`` (qwen-code) are summed; the prompt
  result's ``usage`` (ACP, copilot, opencode) or ``_meta.quota.token_count`` (gemini) wins
  when present. One ``usage`` entry per turn (the recorder sums every usage it sees).
- Updates that only describe the agent's UI (available commands, config options, session
  title, context-window gauge) are not recorded; any other unknown update is kept as ``raw``.
"""

from __future__ import annotations

import difflib
import json
import re
from typing import Any, cast

from aura.contracts import Entry, Usage
from aura.executors.events import (
    SHAPE_ERRORS,
    UNFINISHED_CALL,
    aura_own,
    event_type,
    relativizer,
    usage_number,
)

STATUS = {"pending": "running", "in_progress": "running", "completed": "ok", "failed": "error"}

# ACP ToolKind → aura action. ``edit`` is refined to file_write for new files below.
KIND_ACTIONS = {
    "read": "file_read",
    "edit": "file_edit",
    "delete": "file_edit",
    "move": "file_edit",
    "search": "search",
    "execute": "command",
    "think": "other",
    "fetch": "web_fetch",
    "switch_mode": "other",
    "other": "other",
}

# Updates about the agent's own UI: nothing a session history needs.
SILENT_UPDATES = frozenset({"available_commands_update", "config_option_update",
                            "session_info_update", "usage_update"})

_PATH_KEYS = ("file_path", "filePath", "absolute_path", "path", "notebook_path", "dir_path")
_PATCH_FILE = re.compile(r"^\*\*\* (Add|Update|Delete) File: (.+)$", re.MULTILINE)
_WRITE_WORDS = re.compile(r"\b(write|writing|create|creating|new file)\b|write_file|WriteFile",
                          re.IGNORECASE)
_MCP = re.compile(r"\bMCP\b|^mcp__")
OUTPUT_CAP = 64_000
# Entry kinds and actions are spelled as plain strings on this per-line path (enum member
# lookups cost more than the rest of a chunk's handling); they are the values of
# contracts.EntryKind and contracts.ToolAction, which tests/test_acp.py checks.


def _text_of(content: Any) -> str:
    """The text of one ACP ContentBlock (text, or a resource's text), else ''."""
    if not isinstance(content, dict):
        return ""
    if content.get("type") == "text":
        return str(content.get("text") or "")
    resource = content.get("resource")
    text = resource.get("text") if isinstance(resource, dict) else None
    return text if isinstance(text, str) else ""


class _Tool:
    __slots__ = ("action", "id", "output", "started", "status", "target", "tool")

    def __init__(self, call_id: str) -> None:
        self.id = call_id
        self.tool = ""
        self.action = "other"
        self.target = ""
        self.status = "running"
        self.output = ""
        self.started = False


class UpdateTranslator:
    """Feeds ``session/update`` params in, gets entries out. ``cwd`` makes paths relative;
    ``prompt`` is this turn's prompt (an agent echoing it is not recorded twice)."""

    def __init__(self, cwd: str, prompt: str = "") -> None:
        self.prompt = prompt.strip()
        self.relative = relativizer(cwd or None)
        self._buffer_kind: str | None = None  # "assistant_message" | "thinking" | "user"
        self._buffer: list[str] = []
        self._message_id: Any = None
        self._tools: dict[str, _Tool] = {}
        self._closed: set[str] = set()  # refused calls, already recorded as failed
        self._usage: dict[str, float] = {}
        self._plans = 0

    # -- updates ----------------------------------------------------------------------

    def feed(self, params: dict[str, Any]) -> list[Entry]:
        """The entries of one update; an update in a shape this translator does not know
        (another version of the agent, or a hostile one) is kept as a raw entry."""
        try:
            return self._feed(params)
        except SHAPE_ERRORS:
            return [_raw(params)]

    def _feed(self, params: dict[str, Any]) -> list[Entry]:
        update = params.get("update") if isinstance(params, dict) else None
        if not isinstance(update, dict):
            return [_raw(params)]
        kind = event_type(update, "sessionUpdate")
        meta = update.get("_meta")
        if isinstance(meta, dict) and isinstance(meta.get("usage"), dict):
            self._add_usage(meta["usage"])
        if kind == "agent_message_chunk":
            return self._chunk("assistant_message", update)
        if kind == "agent_thought_chunk":
            return self._chunk("thinking", update)
        if kind == "user_message_chunk":
            return self._chunk("user", update)
        out = self.flush_text()
        if kind in ("tool_call", "tool_call_update"):
            out.extend(self._tool_call(update))
        elif kind == "plan":
            out.append(self._plan(update))
        elif kind == "current_mode_update":
            out.append({"kind": "system",
                        "text": f"agent mode: {update.get('currentModeId')}"})
        elif kind in SILENT_UPDATES:
            pass
        else:
            out.append(_raw(update))
        return out

    def _chunk(self, kind: str, update: dict[str, Any]) -> list[Entry]:
        content = update.get("content")
        text = _text_of(content)
        out: list[Entry] = []
        message_id = update.get("messageId")
        if self._buffer_kind != kind or (message_id is not None and
                                         message_id != self._message_id):
            out = self.flush_text()
            self._buffer_kind = kind
        self._message_id = message_id
        if text:
            self._buffer.append(text)
        elif isinstance(content, dict) and content.get("type") not in (None, "text"):
            # An image, audio or resource link: say what it was rather than drop it.
            out.extend(self.flush_text())
            entry: Entry = {"kind": "system",
                            "text": f"agent sent {content.get('type')} content",
                            "data": content}
            # A content type named like one of aura's own records is not passed as one.
            out.append(_raw(content) if aura_own(cast(dict[str, Any], entry)) else entry)
        return out

    def flush_text(self) -> list[Entry]:
        """The text coalesced so far as one entry (called on turn end too)."""
        kind, parts = self._buffer_kind, self._buffer
        self._buffer_kind, self._buffer = None, []
        text = "".join(parts)
        if not kind or not text:
            return []
        if kind == "user":
            # The agent echoing the prompt: aura recorded it already as user_message.
            if text.strip() == self.prompt:
                return []
            return [{"kind": "user_message", "text": text}]
        return [{"kind": kind, "text": text}]

    # -- tool calls -------------------------------------------------------------------

    def _tool_call(self, update: dict[str, Any]) -> list[Entry]:
        call_id = str(update.get("toolCallId") or f"acp-tool-{len(self._tools) + 1}")
        if call_id in self._closed:
            return []
        tool = self._tools.get(call_id)
        if tool is None:
            tool = self._tools[call_id] = _Tool(call_id)
        self._refine(tool, update)
        raw_status = str(update.get("status") or "")
        status = STATUS.get(raw_status)
        out: list[Entry] = []
        final = status in ("ok", "error")
        if not tool.started and (tool.target or raw_status == "in_progress" or final):
            tool.started = True
            out.append(self._entry(tool, "running"))
        output = self._output(update)
        if output:
            tool.output = output
        if final and tool.started:
            out.append(self._entry(tool, status or "ok", tool.output))
            del self._tools[call_id]
        return out

    def note_permission(self, call: dict[str, Any]) -> None:
        """Learn a tool call from a permission request (gemini asks before it reports the
        call, and reports only a bare failure when refused)."""
        call_id = call.get("toolCallId")
        if call_id:
            tool = self._tools.setdefault(str(call_id), _Tool(str(call_id)))
            self._refine(tool, call)

    def refused(self, call: dict[str, Any], why: str) -> list[Entry]:
        """A call aura refused permission for: a finished, failed tool call. Whatever the
        agent reports about it afterwards is not recorded again."""
        call_id = call.get("toolCallId")
        if not call_id:
            return []
        tool = self._tools.pop(str(call_id), None) or _Tool(str(call_id))
        self._refine(tool, call)
        self._closed.add(tool.id)
        out = [] if tool.started else [self._entry(tool, "running")]
        out.append(self._entry(tool, "error", why))
        return out

    def _refine(self, tool: _Tool, update: dict[str, Any]) -> None:
        """Learn name, action and target from whatever this update carries. Once the
        start entry is out, they stay as they were (start and end must match)."""
        if tool.started:
            return
        meta = update.get("_meta")
        title = str(update.get("title") or "")
        name = meta.get("toolName") if isinstance(meta, dict) else None
        if name:
            tool.tool = str(name)
        elif title and not tool.tool:
            tool.tool = title[:80]
        kind = update.get("kind")
        raw = update.get("rawInput")
        if kind:
            action = KIND_ACTIONS.get(str(kind), "other")
            hint = " ".join(filter(None, [str(name or ""), title,
                                          raw if isinstance(raw, str) else ""]))
            if kind == "edit" and (_WRITE_WORDS.search(hint) or "*** Add File:" in hint):
                action = "file_write"
            if action == "other" and "todo" in hint.lower():
                action = "todo"
            elif action == "other" and _MCP.search(hint):
                action = "mcp"  # gemini titles MCP tools "tool (server MCP Server)"
            tool.action = action
        target = self._target(update, raw, title, tool.action)
        if target:
            tool.target = target

    def _target(self, update: dict[str, Any], raw: Any, title: str, action: str) -> str:
        if isinstance(raw, dict) and action == "command":
            # The command, never the directory it runs in nor the tool's label: the first
            # update of a shell call carries only ``cwd`` (opencode: also as its location,
            # titled "bash") or nothing (qwen 0.24: ``{}``, titled "Shell"); the command
            # comes with the permission request or the next update.
            command = raw.get("command")
            if command:
                return " ".join(map(str, command)) if isinstance(command, list) \
                    else str(command)
            description = raw.get("description")
            return description if isinstance(description, str) else ""
        if isinstance(raw, dict):
            for key in _PATH_KEYS:
                if isinstance(raw.get(key), str) and raw[key]:
                    return self.relative(raw[key])
            for key in ("url", "query", "pattern", "command", "description"):
                value = raw.get(key)
                if isinstance(value, str) and value:
                    return value
        locations = update.get("locations")
        if isinstance(locations, list):
            for location in locations:
                if isinstance(location, dict) and location.get("path"):
                    return self.relative(str(location["path"]))
        if isinstance(raw, str):
            found = _PATCH_FILE.search(raw)
            if found:
                return self.relative(found.group(2).strip())
            if action == "command" and raw.strip():
                return raw.strip()
        if action in ("command", "search",
                      "web_fetch") and title:
            return title
        return ""

    def _output(self, update: dict[str, Any]) -> str:
        parts: list[str] = []
        content = update.get("content")
        if isinstance(content, list):
            for item in content:
                if not isinstance(item, dict):
                    continue
                if item.get("type") == "content":
                    text = _text_of(item.get("content"))
                    if text:
                        parts.append(text)
                elif item.get("type") == "diff":
                    parts.append(self._diff(item))
                elif item.get("type") == "terminal":
                    parts.append(f"(terminal {item.get('terminalId')})")
        if not parts:
            raw = update.get("rawOutput")
            if isinstance(raw, str):
                parts.append(raw)
            elif isinstance(raw, dict):
                for key in ("output", "content", "stdout", "result"):
                    if isinstance(raw.get(key), str):
                        parts.append(raw[key])
                        break
                else:
                    parts.append(json.dumps(raw, ensure_ascii=False))
        text = "\n".join(p for p in parts if p)
        return text if len(text) <= OUTPUT_CAP else text[:OUTPUT_CAP] + "\n…[truncated]"

    def _diff(self, item: dict[str, Any]) -> str:
        path = self.relative(str(item.get("path") or ""))
        old = item.get("oldText") or ""
        new = item.get("newText") or ""
        if not old:
            # A new file (the common case): the diff is the new text, without difflib.
            added = str(new).splitlines()
            if not added:
                return ""
            span = "1" if len(added) == 1 else f"1,{len(added)}"  # as difflib writes it
            return "\n".join([f"--- /dev/null\n+++ b/{path}\n@@ -0,0 +{span} @@",
                              *(f"+{line}" for line in added)])
        lines = difflib.unified_diff(str(old).splitlines(), str(new).splitlines(),
                                     f"a/{path}" if old else "/dev/null", f"b/{path}",
                                     lineterm="")
        return "\n".join(lines)

    def _entry(self, tool: _Tool, status: str, output: str | None = None) -> Entry:
        out: Entry = {"kind": "tool_call", "id": tool.id,
                      "tool": tool.tool or tool.action, "action": tool.action,
                      "target": tool.target, "status": status}
        if output:
            out["output"] = output
        return out

    def _plan(self, update: dict[str, Any]) -> Entry:
        self._plans += 1
        given = update.get("entries")
        items: list[Any] = given if isinstance(given, list) else []
        marks: dict[Any, str] = {"completed": "[x]", "in_progress": "[~]"}
        lines = [f"{marks.get(i.get('status'), '[ ]')} {i.get('content', '')}"
                 for i in items if isinstance(i, dict)]
        done = sum(1 for i in items if isinstance(i, dict) and i.get("status") == "completed")
        return {"kind": "tool_call", "id": f"plan-{self._plans}", "tool": "plan",
                "action": "todo", "target": f"{done}/{len(lines)} done",
                "status": "ok", "output": "\n".join(lines)}

    # -- usage and the end of a turn --------------------------------------------------

    def _add_usage(self, usage: dict[str, Any]) -> None:
        for key, value in normalize_usage(usage).items():
            self._usage[key] = self._usage.get(key, 0) + value

    def finish(self, result: dict[str, Any] | None, interrupted: bool = False) -> list[Entry]:
        """Entries that close the turn: pending text, unfinished tool calls, usage."""
        out = self.flush_text()
        for tool in list(self._tools.values()):
            if tool.started:
                out.append(self._entry(tool, "error", "interrupted" if interrupted else
                                       UNFINISHED_CALL))
        self._tools.clear()
        usage = turn_usage(result) if result else {}
        usage = usage or self._usage
        if usage:
            out.append({"kind": "usage", "usage": cast(Usage, usage)})
        return out


_USAGE_KEYS = {
    "inputTokens": "input_tokens", "input_tokens": "input_tokens",
    "outputTokens": "output_tokens", "output_tokens": "output_tokens",
    "cachedReadTokens": "cached_input_tokens", "cached_input_tokens": "cached_input_tokens",
    "thoughtTokens": "reasoning_tokens", "reasoning_tokens": "reasoning_tokens",
}


def _raw(value: Any) -> Entry:
    """An update kept as the agent sent it, as JSON text."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (ValueError, RecursionError):  # nested deeper than the stack: nor can repr
        text = f"(an update of {type(value).__name__} nested too deep to keep)"
    return {"kind": "raw", "text": text}


def normalize_usage(usage: dict[str, Any]) -> dict[str, float]:
    """ACP's camelCase token counts → aura's usage keys (zero counts of optional kinds
    are left out)."""
    out: dict[str, float] = {}
    for key, value in usage.items():
        name = _USAGE_KEYS.get(key)
        if name and usage_number(value) and (value or name in ("input_tokens",
                                                                "output_tokens")):
            out[name] = out.get(name, 0) + value
    return out


def turn_usage(result: dict[str, Any]) -> dict[str, float]:
    """The usage a ``session/prompt`` result reports, in aura's keys ({} if none)."""
    usage = result.get("usage")
    if isinstance(usage, dict):
        found = normalize_usage(usage)
        if found:
            return found
    meta = result.get("_meta")
    quota = meta.get("quota") if isinstance(meta, dict) else None
    counts = quota.get("token_count") if isinstance(quota, dict) else None
    if isinstance(counts, dict):
        return normalize_usage(counts)
    return {}
