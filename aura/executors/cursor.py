"""cursor-agent headless: ``cursor-agent -p --output-format stream-json (--force|--trust)``
with the prompt on stdin (then EOF), so no prompt is ever taken for an option.

- Approvals: cursor-agent refuses to act headless without one of them, so aura requires
  ``--force`` (allow every command; ``--yolo`` means the same) or ``--trust`` (trust the
  workspace); neither is a usage error, unless a person answers approvals: then the turn
  runs ``cursor-agent acp`` on the shared ACP client (unverified: cursor-agent is not
  installable where aura is tested).
- Follow-up: ``--resume CHAT_ID`` (the ``session_id`` of its events). ``--model M``.
- Output (cursor's documented stream-json): ``system`` init, ``user`` echo, ``assistant``
  (one line per complete message), ``thinking`` deltas, ``tool_call`` ``started`` /
  ``completed`` with ``tool_call: {"<kind>ToolCall": {"args": …, "result": {"success"|
  "error": …}}}`` (or ``{"function": {"name", "arguments"}}``), and ``result``
  (``session_id``, ``is_error``, ``result`` text).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from aura.contracts import Entry
from aura.errors import UsageError
from aura.executors.base import (
    CommandExecutor,
    Invocation,
    LineParser,
    Outcome,
    Output,
    RunRequest,
)
from aura.executors.events import raw_entry, strict_loads
from aura.executors.streamjson import StreamJsonParser, result_text

Handler = Callable[[dict[str, Any], str], list[Entry]]

# cursor's tool kinds (the key without "ToolCall") → the tool name aura records, which
# streamjson.tool_action maps to an action.
CURSOR_TOOLS = {
    "read": "Read", "write": "Write", "edit": "Edit", "delete": "Delete",
    "shell": "Shell", "grep": "Grep", "glob": "Glob", "ls": "LS",
    "updateTodos": "TodoWrite", "todo": "TodoWrite", "readTodos": "TodoRead",
    "webSearch": "WebSearch", "webFetch": "WebFetch", "task": "Task",
    "semSearch": "Search", "codebaseSearch": "Search",
}


class CursorParser(StreamJsonParser):
    """claude-style events plus cursor's ``tool_call`` and ``thinking`` events."""

    def __init__(self, cwd: str | None = None) -> None:
        super().__init__(cwd)
        self.thought: list[str] = []
        self.handlers["tool_call"] = self.on_tool_call
        # Thinking arrives as deltas; it becomes one entry, flushed when it completes or
        # when any other event comes.
        for key, handler in list(self.handlers.items()):
            self.handlers[key] = self._after_thinking(handler)
        self.handlers["thinking"] = self.on_thinking

    def _after_thinking(self, handler: Handler) -> Handler:
        def handle(obj: dict[str, Any], line: str) -> list[Entry]:
            entries = handler(obj, line)
            return [*self._flush_thinking(), *entries] if self.thought else entries
        return handle

    def _flush_thinking(self) -> list[Entry]:
        text, self.thought = "".join(self.thought), []
        return [{"kind": "thinking", "text": text}] if text.strip() else []

    def on_thinking(self, obj: dict[str, Any], line: str) -> list[Entry]:
        if obj.get("subtype") == "completed":
            return self._flush_thinking()
        text = obj.get("text")
        if isinstance(text, str):
            self.thought.append(text)
        return []

    def on_tool_call(self, obj: dict[str, Any], line: str) -> list[Entry]:
        call_id = str(obj.get("call_id") or obj.get("id") or "")
        call = obj.get("tool_call") or {}
        name, args, result = _unpack(call)
        if obj.get("subtype") == "started":
            return [self.tool_start(call_id, name, args)]
        if obj.get("subtype") == "completed":
            if call_id not in self.pending:
                self.tool_start(call_id, name, args)
            ok, output = _outcome(result)
            return [self.tool_end(call_id, ok, output)]
        return [raw_entry(line)]

    def finish(self) -> list[Entry]:
        return [*self._flush_thinking(), *super().finish()]


def _unpack(call: Mapping[str, Any]) -> tuple[str, Any, Any]:
    """(tool name, args, result) from cursor's ``tool_call`` object."""
    for key, body in call.items():
        if not isinstance(body, Mapping):
            continue
        if key == "function":
            raw = body.get("arguments")
            try:
                args = strict_loads(raw) if isinstance(raw, str) else raw
            except ValueError:
                args = raw
            return str(body.get("name") or "function"), args, body.get("result")
        if key == "mcpToolCall":
            args = body.get("args") or {}
            server = args.get("providerIdentifier") or args.get("server") or "mcp"
            tool = args.get("toolName") or args.get("name") or "tool"
            return f"mcp__{server}__{tool}", args.get("args", args), body.get("result")
        kind = key[: -len("ToolCall")] if key.endswith("ToolCall") else key
        return CURSOR_TOOLS.get(kind, kind), body.get("args") or {}, body.get("result")
    return "unknown", {}, None


def _outcome(result: Any) -> tuple[bool, str]:
    if not isinstance(result, Mapping):
        return True, result_text(result)
    if "success" in result:
        body = result["success"]
        if isinstance(body, Mapping):
            for key in ("content", "stdout", "output", "text"):
                if isinstance(body.get(key), str):
                    return True, body[key]
        return True, result_text(body)
    for key in ("error", "failure", "rejected"):
        if key in result:
            body = result[key]
            if isinstance(body, Mapping):
                for field in ("message", "error", "stderr", "reason"):
                    if isinstance(body.get(field), str):
                        return False, body[field]
            return False, result_text(body)
    return True, result_text(result)


class CursorAgentExecutor(CommandExecutor):
    name = "cursor-agent"
    program = "cursor-agent"
    description = ("Cursor's agent CLI (stream-json; needs --force or --trust, or a person "
                   "answering approvals over ACP: unverified)")
    features: ClassVar[frozenset[str]] = frozenset(
        {"resume", "models", "--yolo", "--force", "--trust", "approvals", "interrupt"})

    def validate(self, request: RunRequest) -> None:
        super().validate(request)
        approvals = request.approvals
        if not (approvals.force or approvals.trust or approvals.yolo or
                request.approver is not None):
            again = " (approval flags apply to one run: give it on follow-ups too)" \
                if request.history else ""
            raise UsageError("cursor-agent runs headless only with --force (allow every "
                             f"command) or --trust (trust this workspace); add one{again}")

    def build_command(self, request: RunRequest) -> Invocation:
        argv = [*self.base_argv(request), "-p", "--output-format", "stream-json"]
        approvals = request.approvals
        if approvals.force or approvals.yolo:
            argv.append("--force")
        if approvals.trust:
            argv.append("--trust")
        if request.model:
            argv += ["--model", request.model]
        if request.native_session_id:
            argv += ["--resume", request.native_session_id]
        argv += request.params
        return Invocation(argv=argv, env=request.child_env(),
                          stdin=request.prompt.encode())

    def parser(self, request: RunRequest) -> LineParser:
        return CursorParser(request.cwd)

    async def run(self, request: RunRequest, output: Output) -> Outcome:
        """The ACP mode when a person answers approvals and the config asks for it
        (``[executors.cursor-agent] protocol = "acp"``: unverified, cursor-agent cannot be
        installed here), else the usual one."""
        from aura.executors.acp.agents import CursorAcpExecutor, asks_person

        if asks_person(request) and request.settings.get("protocol") == "acp":
            return await self.run_through(CursorAcpExecutor(), request, output)
        return await super().run(request, output)
