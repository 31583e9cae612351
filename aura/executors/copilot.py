"""copilot (GitHub Copilot CLI, ``@github/copilot`` on npm): ``copilot -p PROMPT
--output-format json``.

Command: ``copilot -p PROMPT [--resume=SID] --output-format json [--allow-all-tools]
[--allow-tool=T]… [--deny-tool=T]… [--model M] [params]``. ``--yolo`` and
``--allow-all-tools`` both give ``--allow-all-tools``; ``--allow-tool``/``--deny-tool``
pass through. Without any of them copilot denies every tool that would need approval
(it cannot ask in prompt mode); with a person answering approvals (an approver on the
request, neither --yolo nor --allow-all-tools) the turn runs ``copilot --acp`` instead.

Events (~25 types): ``assistant.message`` (final text of one model reply, with the tool
requests), ``assistant.message_delta`` (ephemeral pieces of it), ``assistant.reasoning``
(+ ``_delta``), ``tool.execution_start`` / ``tool.execution_complete``, ``assistant.usage``,
``session.info|warning|error``, and ``result`` (sessionId: the native session id, exitCode,
usage: premium requests and durations). Deltas are only kept when no final message with the
same id arrives (the final text replaces them; a run cut short keeps what was streamed).
Housekeeping events with nothing for the record (turn/model-call markers, skill and MCP
loading, background-task ticks, partial tool output superseded by the result) are not
stored; any other event type is kept as raw.
"""

from __future__ import annotations

from typing import Any, ClassVar

from aura.contracts import Entry, ToolAction
from aura.executors.base import (
    CommandExecutor,
    Invocation,
    LineParser,
    Outcome,
    Output,
    RunRequest,
)
from aura.executors.events import event_type, native_id, raw_entry, strict_loads
from aura.executors.jsonevents import (
    ASSISTANT,
    ERROR,
    SYSTEM,
    THINKING,
    USAGE,
    JsonEventParser,
    as_text,
    interrupt_then_stop,
    patch_files,
)
from aura.process import Child

# tool name → (action, argument naming the target)
TOOLS: dict[str, tuple[ToolAction, str]] = {
    "create": (ToolAction.FILE_WRITE, "path"),
    "write": (ToolAction.FILE_WRITE, "path"),
    "edit": (ToolAction.FILE_EDIT, "path"),
    "str_replace": (ToolAction.FILE_EDIT, "path"),
    "str_replace_editor": (ToolAction.FILE_EDIT, "path"),
    "insert": (ToolAction.FILE_EDIT, "path"),
    "view": (ToolAction.FILE_READ, "path"),
    "read": (ToolAction.FILE_READ, "path"),
    "bash": (ToolAction.COMMAND, "command"),
    "shell": (ToolAction.COMMAND, "command"),
    "powershell": (ToolAction.COMMAND, "command"),
    "read_bash": (ToolAction.COMMAND, "shellId"),
    "write_bash": (ToolAction.COMMAND, "shellId"),
    "stop_bash": (ToolAction.COMMAND, "shellId"),
    "read_powershell": (ToolAction.COMMAND, "shellId"),
    "write_powershell": (ToolAction.COMMAND, "shellId"),
    "stop_powershell": (ToolAction.COMMAND, "shellId"),
    "grep": (ToolAction.SEARCH, "pattern"),
    "rg": (ToolAction.SEARCH, "pattern"),
    "glob": (ToolAction.SEARCH, "pattern"),
    "web_fetch": (ToolAction.WEB_FETCH, "url"),
    "fetch": (ToolAction.WEB_FETCH, "url"),
    "web_search": (ToolAction.WEB_FETCH, "query"),
    "update_todo": (ToolAction.TODO, "todos"),
    "task": (ToolAction.TASK, "description"),
    "report_intent": (ToolAction.OTHER, "intent"),
}

_PATH_TOOLS = {"create", "write", "edit", "str_replace", "str_replace_editor", "insert",
               "view", "read"}

# Events that carry nothing for the record (see the module docstring).
QUIET = frozenset({
    "session.skills_loaded", "session.mcp_servers_loaded", "session.tools_updated",
    "session.background_tasks_changed", "session.start", "session.resume",
    "session.idle", "session.usage_info",
    "model.call_start", "model.call_final_result",
    "assistant.turn_start", "assistant.turn_end", "assistant.idle",
    "assistant.message_start", "assistant.tool_call_delta", "assistant.streaming_delta",
    "tool.execution_partial_result", "tool.execution_progress", "user.message",
})


def _arguments(value: Any) -> Any:
    """Tool arguments: a dict for function tools, text for custom ones (apply_patch);
    function arguments sometimes arrive as a JSON string."""
    if isinstance(value, str):
        stripped = value.strip()
        if stripped.startswith("{"):
            try:
                return strict_loads(stripped)
            except ValueError:
                return value
    return value


def _piece(value: Any) -> str:
    """A streamed piece of text; anything else makes its event a raw line (a TypeError
    that ``feed`` catches), not a crash when the pieces are joined at the end."""
    if not isinstance(value, str):
        raise TypeError(f"a delta of {type(value).__name__}")
    return value


class CopilotParser(JsonEventParser):
    def __init__(self, cwd: str | None = None) -> None:
        super().__init__(cwd)
        self.deltas: dict[str, list[str]] = {}  # message id → streamed pieces
        self.thought_deltas: dict[str, list[str]] = {}
        self.requests: dict[str, dict[str, Any]] = {}  # tool call id → request

    def handle(self, event: dict[str, Any], line: str) -> list[Entry]:
        kind = event_type(event)
        data = event.get("data") or {}
        if kind in QUIET:
            return []
        if kind == "assistant.message_delta":
            self.deltas.setdefault(str(data["messageId"]), []).append(
                _piece(data["deltaContent"]))
            return []
        if kind == "assistant.reasoning_delta":
            key = str(data.get("reasoningId") or data.get("messageId") or "")
            self.thought_deltas.setdefault(key, []).append(_piece(data["deltaContent"]))
            return []
        if kind == "assistant.message":
            return self._message(data)
        if kind == "assistant.reasoning":
            key = str(data.get("reasoningId") or data.get("messageId") or "")
            self.thought_deltas.pop(key, None)
            text = data.get("content") or ""
            return [{"kind": THINKING, "text": text}] if text else []
        if kind == "tool.execution_start":
            return [self._tool_start(data)]
        if kind == "tool.execution_complete":
            return [self._tool_end(data)]
        if kind == "assistant.usage":
            return [self._usage(data)]
        if kind == "result":
            return self._result(event)
        if kind == "model.call_finished":
            outcome = data.get("outcome")
            if outcome in (None, "success"):
                return []
            return [{"kind": SYSTEM, "text": f"model call: {outcome}",
                     "data": data}]
        if kind in ("session.info", "session.warning"):
            label = data.get("infoType") or data.get("warningType") or kind.split(".")[1]
            return [{"kind": SYSTEM, "text": f"{label}: {data.get('message', '')}"}]
        if kind == "session.error":
            message = data.get("message") or data.get("errorType") or "error"
            self.error = message
            return [{"kind": ERROR, "text": message}]
        if kind == "abort":
            reason = data.get("reason") or ""
            if reason == "user_abort":  # our own Ctrl-C: the run is cancelled, not failed
                return [{"kind": SYSTEM, "text": "aborted by the user"}]
            message = f"aborted: {reason}".rstrip(": ")
            self.error = message
            return [{"kind": ERROR, "text": message}]
        if kind == "agent.interrupted":
            return [{"kind": SYSTEM, "text": f"interrupted during {data.get('activity', 'work')}",
                     "data": data}]
        return [raw_entry(line)]

    def _message(self, data: dict[str, Any]) -> list[Entry]:
        self.deltas.pop(str(data.get("messageId")), None)
        for request in data.get("toolRequests") or []:
            self.requests[str(request.get("toolCallId"))] = request
        entries: list[Entry] = []
        reasoning = data.get("reasoningText")
        if reasoning:
            entries.append({"kind": THINKING, "text": reasoning})
        text = data.get("content") or ""
        if text:
            entry: Entry = {"kind": ASSISTANT, "text": text}
            if data.get("model"):
                entry["model"] = data["model"]
            entries.append(entry)
        return entries

    def _identify(self, name: str, args: Any, data: dict[str, Any]
                  ) -> tuple[ToolAction, str, dict[str, Any] | None]:
        """(action, target, extra data) of one tool call."""
        if data.get("mcpServerName"):
            tool = data.get("mcpToolName") or name
            return ToolAction.MCP, f"{data['mcpServerName']}.{tool}", None
        if name == "apply_patch":
            if isinstance(args, dict):
                text = as_text(args.get("input") or args.get("patch") or "")
            else:
                text = as_text(args)
            files = patch_files(text)
            writes_only = bool(files) and all(kind == "add" for kind, _ in files)
            return (ToolAction.FILE_WRITE if writes_only else ToolAction.FILE_EDIT,
                    ", ".join(self.target(path) for _, path in files), None)
        action, field = TOOLS.get(name, (ToolAction.OTHER, ""))
        if not isinstance(args, dict):
            return action, as_text(args) if action is not ToolAction.OTHER else "", None
        extra: dict[str, Any] | None = None
        if field == "todos":
            target = as_text(args.get("todos") or "").split("\n", 1)[0]
        elif field:
            value = args.get(field)
            target = as_text(value) if value is not None else ""
            if name in _PATH_TOOLS:
                target = self.target(target)
        else:
            target = ""
        shell = data.get("shellToolInfo")
        if isinstance(shell, dict) and shell.get("hasWriteFileRedirection"):
            # A command that writes files (`printf hi > hello.txt`): say which.
            extra = {"writes": [self.target(p) for p in shell.get("possiblePaths") or []]}
        return action, target, extra

    def _tool_start(self, data: dict[str, Any]) -> Entry:
        call_id = str(data["toolCallId"])
        name = str(data.get("toolName") or "")
        args = _arguments(data.get("arguments"))
        action, target, extra = self._identify(name, args, data)
        return self.tool_start(call_id, name, action.value, target, data=extra)

    def _tool_end(self, data: dict[str, Any]) -> Entry:
        call_id = str(data["toolCallId"])
        result = data.get("result") or {}
        error = data.get("error")
        ok = bool(data.get("success"))
        if error:
            output = as_text(error.get("message") if isinstance(error, dict) else error)
        else:
            output = as_text(result.get("content") if isinstance(result, dict) else result)
        if call_id in self.open_calls:
            return self.tool_end(call_id, "ok" if ok else "error", output=output)
        # Never started (denied, or the start was lost): identify it from the request.
        request = self.requests.get(call_id, {})
        name = str(request.get("name") or data.get("toolName") or "")
        action, target, extra = self._identify(name, _arguments(request.get("arguments")),
                                               data)
        return self.tool_end(call_id, "ok" if ok else "error", tool=name,
                             action=action.value, target=target, output=output, data=extra)

    @staticmethod
    def _usage(data: dict[str, Any]) -> Entry:
        usage: dict[str, Any] = {}
        for ours, theirs in (("input_tokens", "inputTokens"), ("output_tokens", "outputTokens"),
                             ("cached_input_tokens", "cacheReadTokens")):
            value = data.get(theirs)
            if isinstance(value, int):
                usage[ours] = value
        entry: Entry = {"kind": USAGE, "usage": usage}  # type: ignore[typeddict-item]
        # copilot's "cost" counts premium requests, not dollars: kept aside.
        extra = {k: data[k] for k in ("cost", "cacheWriteTokens", "duration") if k in data}
        if extra:
            entry["data"] = extra
        if data.get("model"):
            entry["model"] = data["model"]
        return entry

    def _result(self, event: dict[str, Any]) -> list[Entry]:
        session = native_id(event.get("sessionId"))
        if session is not None:
            self.native_session_id = session
        code = event.get("exitCode")
        entries: list[Entry] = []
        if isinstance(code, int) and code != 0:
            self.error = f"copilot reported exit code {code}"
        elif code == 0:
            self.error = None  # the final result decides: an earlier error was recovered
        usage = event.get("usage")
        if isinstance(usage, dict):
            figures: dict[str, Any] = {}
            for ours, theirs in (("premium_requests", "premiumRequests"),
                                 ("api_duration_ms", "totalApiDurationMs")):
                if isinstance(usage.get(theirs), (int, float)):
                    figures[ours] = usage[theirs]
            entry: Entry = {"kind": USAGE, "usage": figures}  # type: ignore[typeddict-item]
            changes = usage.get("codeChanges")
            if isinstance(changes, dict):
                entry["data"] = {"code_changes": {
                    "lines_added": changes.get("linesAdded"),
                    "lines_removed": changes.get("linesRemoved"),
                    "files": [self.target(p) for p in changes.get("filesModified") or []]}}
            entries.append(entry)
        return entries

    def finish(self) -> list[Entry]:
        tail: list[Entry] = []
        for pieces in self.thought_deltas.values():
            if "".join(pieces):
                tail.append({"kind": THINKING, "text": "".join(pieces),
                             "data": {"partial": True}})
        for pieces in self.deltas.values():
            if "".join(pieces):
                tail.append({"kind": ASSISTANT,
                             "text": "".join(pieces), "data": {"partial": True}})
        self.deltas.clear()
        self.thought_deltas.clear()
        return tail + super().finish()


class CopilotExecutor(CommandExecutor):
    name = "copilot"
    program = "copilot"
    npx_package = "@github/copilot"
    description = ("GitHub Copilot CLI (copilot -p --output-format json; copilot --acp "
                   "when a person answers approvals)")
    features: ClassVar[frozenset[str]] = frozenset(
        {"resume", "models", "--yolo", "--allow-all-tools", "--allow-tool", "--deny-tool",
         "approvals", "interrupt"})

    def build_command(self, request: RunRequest) -> Invocation:
        argv = self.base_argv(request)
        if request.prompt.startswith("-"):
            argv.append(f"--prompt={request.prompt}")  # not mistaken for an option
        else:
            argv += ["-p", request.prompt]
        if request.native_session_id:
            argv.append(f"--resume={request.native_session_id}")
        argv += ["--output-format", "json"]
        approvals = request.approvals
        if approvals.yolo or approvals.allow_all_tools:
            argv.append("--allow-all-tools")
        # --allow-tool/--deny-tool take several values: one per flag, joined with '='.
        argv += [f"--allow-tool={tool}" for tool in approvals.allow_tools]
        argv += [f"--deny-tool={tool}" for tool in approvals.deny_tools]
        if request.model:
            argv += ["--model", request.model]
        argv += list(request.params)
        return Invocation(argv=argv, env=request.child_env())

    def parser(self, request: RunRequest) -> LineParser:
        return CopilotParser(request.cwd)

    async def run(self, request: RunRequest, output: Output) -> Outcome:
        """The ACP mode when a person answers approvals (see aura.executors.acp.agents),
        else the usual one."""
        from aura.executors.acp.agents import CopilotAcpExecutor, asks_person

        if asks_person(request):
            return await self.run_through(CopilotAcpExecutor(), request, output)
        return await super().run(request, output)

    async def interrupt(self, child: Child) -> None:
        await interrupt_then_stop(child)
