"""codex (OpenAI Codex CLI), the default executor: ``codex exec --json``.

Command: ``codex exec --json --skip-git-repo-check [approval/sandbox] [-m MODEL] [params]
[resume THREAD_ID] PROMPT`` with stdin on /dev/null (codex waits for stdin otherwise).
Approvals: ``--yolo`` → ``--dangerously-bypass-approvals-and-sandbox``;
``--auto-approve true`` → ``--sandbox workspace-write`` (edits and commands inside the
workspace run without asking: what ``--full-auto`` used to be; codex 0.169 no longer has
that flag), ``--auto-approve false`` → ``--sandbox read-only``; otherwise the config's
``[executors.codex] sandbox`` if set.

Events: ``thread.started`` (thread_id: the native session id), ``item.started|updated|
completed`` for agent_message, reasoning, command_execution, file_change, todo_list,
mcp_tool_call, web_search, collab_tool_call and error items, ``turn.completed`` (usage),
``turn.failed`` and ``error``. ``turn.completed.usage`` counts the whole thread, earlier
turns included, so on resume the figures of the previous turn (kept in the usage entry's
``data.thread_total``) are subtracted.

Mode: a run with an approver (someone answers approval requests) and without ``--yolo``
goes through ``codex app-server`` instead (aura.executors.codex_appserver), where codex
asks before it writes or runs a command; its items become the same entries, through this
parser. Every other run is ``codex exec --json`` as above.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from aura.contracts import Entry, ToolAction
from aura.errors import AuraError, ConfigError
from aura.executors.base import (
    CommandExecutor,
    Invocation,
    Outcome,
    Output,
    RunRequest,
)
from aura.executors.events import event_type, native_id, raw_entry
from aura.executors.jsonevents import (
    ASSISTANT,
    ERROR,
    SYSTEM,
    THINKING,
    USAGE,
    JsonEventParser,
    as_text,
    interrupt_then_stop,
)
from aura.process import Child

if TYPE_CHECKING:
    from aura.executors.codex_appserver import AppServerRun

SANDBOX_MODES = ("read-only", "workspace-write", "danger-full-access")

# codex usage field → aura usage field
_USAGE_FIELDS = {"input_tokens": "input_tokens", "output_tokens": "output_tokens",
                 "cached_input_tokens": "cached_input_tokens",
                 "reasoning_output_tokens": "reasoning_tokens"}

_TOOL_ITEMS = {"command_execution", "file_change", "todo_list", "mcp_tool_call",
               "web_search", "collab_tool_call"}


def _previous_thread_total(history: tuple[Entry, ...] | list[Entry]) -> dict[str, int]:
    for item in reversed(history):
        if item.get("kind") == USAGE:
            data = item.get("data")
            if isinstance(data, dict) and isinstance(data.get("thread_total"), dict):
                return {k: v for k, v in data["thread_total"].items() if isinstance(v, int)}
    return {}


class CodexParser(JsonEventParser):
    def __init__(self, cwd: str | None = None,
                 previous_total: dict[str, int] | None = None) -> None:
        super().__init__(cwd)
        self.previous_total = previous_total or {}
        self.partial: dict[str, Entry] = {}  # agent_message/reasoning seen before completion

    def handle(self, event: dict[str, Any], line: str) -> list[Entry]:
        kind = event_type(event)
        if kind in ("item.started", "item.updated", "item.completed"):
            return self._item(kind, event["item"], line)
        if kind == "thread.started":
            thread = native_id(event["thread_id"])
            if thread is None:
                return [raw_entry(line)]
            self.native_session_id = thread
            return [{"kind": SYSTEM, "text": "codex thread started",
                     "data": {"thread_id": thread}}]
        if kind == "turn.started":
            return []  # a marker with no content
        if kind == "turn.completed":
            self.error = None  # an earlier error event was retried away
            return [self._usage(event.get("usage") or {})]
        if kind == "turn.failed":
            message = (event.get("error") or {}).get("message") or "turn failed"
            self.error = message
            return [{"kind": ERROR, "text": message}]
        if kind == "error":
            message = event.get("message") or "error"
            # Kept as the reason should the run end here; cleared by a turn that completes.
            self.error = message
            if message.startswith("Reconnecting"):
                # codex retrying the model connection: news, not (yet) a failure.
                return [{"kind": SYSTEM, "text": message}]
            return [{"kind": ERROR, "text": message}]
        return [raw_entry(line)]

    def _usage(self, usage: dict[str, Any]) -> Entry:
        total = {key: value for key, value in usage.items()
                 if isinstance(value, int) and not isinstance(value, bool)}
        turn = dict(total)
        if self.previous_total:
            diff = {key: value - self.previous_total.get(key, 0) for key, value in total.items()}
            if all(value >= 0 for value in diff.values()):
                turn = diff
        figures = {ours: turn[theirs] for theirs, ours in _USAGE_FIELDS.items()
                   if theirs in turn}
        self.previous_total = total
        return {"kind": USAGE, "usage": figures,  # type: ignore[typeddict-item]
                "data": {"thread_total": total}}

    def _item(self, kind: str, item: dict[str, Any], line: str) -> list[Entry]:
        item_type = item.get("type") or item.get("item_type")
        item_id = str(item.get("id", ""))
        done = kind == "item.completed"
        if item_type in ("agent_message", "assistant_message", "reasoning"):
            entry_kind = THINKING if item_type == "reasoning" else ASSISTANT
            entry: Entry = {"kind": entry_kind, "text": item.get("text") or ""}
            if not done:
                # Superseded by the completed item; kept only if that never comes.
                self.partial[item_id] = entry
                return []
            self.partial.pop(item_id, None)
            return [entry] if entry["text"] else []
        if item_type == "error":
            return [{"kind": ERROR, "text": item.get("message") or ""}]
        if item_type in _TOOL_ITEMS:
            return [self._tool(item_type, item_id, item, done)]
        return [raw_entry(line)]

    def _tool(self, item_type: str, item_id: str, item: dict[str, Any], done: bool) -> Entry:
        status = item.get("status")
        ok = status not in ("failed", "declined")
        output: str | None = None
        data: dict[str, Any] | None = None
        if item_type == "command_execution":
            action, target = ToolAction.COMMAND, item.get("command") or ""
            output = item.get("aggregated_output")
            code = item.get("exit_code")
            if code is not None:
                ok = ok and code == 0
                data = {"exit_code": code}
        elif item_type == "file_change":
            changes = item.get("changes") or []
            kinds = {change.get("kind") for change in changes}
            action = ToolAction.FILE_WRITE if kinds == {"add"} else ToolAction.FILE_EDIT
            listed = [{"path": self.target(c.get("path", "")), "kind": c.get("kind")}
                      for c in changes]
            target = ", ".join(change["path"] for change in listed)
            data = {"changes": listed}
        elif item_type == "todo_list":
            items = item.get("items") or []
            action = ToolAction.TODO
            finished = sum(1 for todo in items if todo.get("completed"))
            target = f"{finished}/{len(items)} done"
            output = "\n".join(f"[{'x' if todo.get('completed') else ' '}] {todo.get('text', '')}"
                               for todo in items)
        elif item_type == "mcp_tool_call":
            action = ToolAction.MCP
            target = f"{item.get('server', '')}.{item.get('tool', '')}"
            error = item.get("error")
            if error:
                ok = False
                output = as_text(error.get("message") if isinstance(error, dict) else error)
            elif item.get("result") is not None:
                output = as_text(item["result"])
            if item.get("arguments") is not None:
                data = {"arguments": item["arguments"]}
        elif item_type == "web_search":
            action = ToolAction.WEB_FETCH
            web = item.get("action")
            if not isinstance(web, dict):
                web = {}
            target = item.get("query") or web.get("query") or web.get("url") or ""
        else:  # collab_tool_call: a sub-agent
            action = ToolAction.TASK
            target = item.get("prompt") or item.get("tool") or ""
        if not done:
            # item.started, or item.updated (a todo list ticking along): still running.
            entry = self.tool_start(item_id, item_type, action.value, target, data=data)
            if output:
                entry["output"] = output
            return entry
        if item_type == "todo_list" and item_id in self.open_calls:
            self.open_calls[item_id]["target"] = target  # the final tally, not the first
        return self.tool_end(item_id, "ok" if ok else "error", tool=item_type,
                             action=action.value, target=target, output=output, data=data)

    def finish(self) -> list[Entry]:
        tail: list[Entry] = []
        for entry in self.partial.values():
            if entry.get("text"):
                entry["data"] = {"partial": True}
                tail.append(entry)
        self.partial.clear()
        return tail + super().finish()


class CodexExecutor(CommandExecutor):
    name = "codex"
    program = "codex"
    npx_package = "@openai/codex"
    description = "OpenAI Codex CLI (codex exec --json)"
    features: ClassVar[frozenset[str]] = frozenset(
        {"resume", "models", "--yolo", "--auto-approve", "approvals", "steer", "interrupt"})

    def validate(self, request: RunRequest) -> None:
        super().validate(request)
        sandbox = request.settings.get("sandbox")
        if sandbox is not None and sandbox not in SANDBOX_MODES:
            raise ConfigError(f"[executors.codex] sandbox = {sandbox!r} is not one of "
                              f"{', '.join(SANDBOX_MODES)}")

    read_only_mode = "--sandbox read-only"

    def approval_args(self, request: RunRequest) -> list[str]:
        if request.read_only:
            return ["--sandbox", "read-only"]
        approvals = request.approvals
        if approvals.yolo:
            return ["--dangerously-bypass-approvals-and-sandbox"]
        if approvals.auto_approve is True:
            return ["--sandbox", "workspace-write"]
        if approvals.auto_approve is False:
            return ["--sandbox", "read-only"]
        sandbox = request.settings.get("sandbox")
        return [] if sandbox is None else ["--sandbox", str(sandbox)]

    def build_command(self, request: RunRequest) -> Invocation:
        argv = [*self.base_argv(request), "exec", "--json", "--skip-git-repo-check"]
        argv += self.approval_args(request)
        if request.model:
            argv += ["-m", request.model]
        argv += list(request.params)
        if request.native_session_id:
            argv += ["resume", request.native_session_id]
        if request.prompt.startswith("-"):
            argv.append("--")  # a prompt like "-v is broken" is not an option
        argv.append(request.prompt)
        # stdin stays /dev/null: codex reads stdin to EOF before starting.
        return Invocation(argv=argv, env=request.child_env())

    def parser(self, request: RunRequest) -> CodexParser:
        previous = _previous_thread_total(request.history) if request.native_session_id else {}
        return CodexParser(request.cwd, previous)

    _live: AppServerRun | None = None  # the app-server turn running now

    @staticmethod
    def uses_app_server(request: RunRequest) -> bool:
        """Someone answers approvals and nothing bypasses them: codex app-server."""
        return request.approver is not None and not request.approvals.yolo and \
            not request.read_only  # a read-only review runs exec's read-only sandbox

    async def run(self, request: RunRequest, output: Output) -> Outcome:
        if not self.uses_app_server(request):
            return await super().run(request, output)
        from aura.executors.codex_appserver import AppServerRun

        argv = [*self.base_argv(request), "app-server", *request.params]
        self._live = AppServerRun(argv, request, output, self.parser(request))
        try:
            return await self._live.run()
        finally:
            self._live = None

    def live_controls(self) -> frozenset[str]:
        """Steer and interrupt in app-server mode, while its turn runs (``codex exec``
        reads nothing once started)."""
        live = self._live
        return frozenset({"steer", "interrupt"}) if live is not None and live.running() \
            else frozenset()

    async def steer_turn(self, text: str) -> None:
        await self.steer(text)

    async def interrupt_turn(self) -> None:
        if self._live is None:
            raise AuraError("codex can interrupt a running turn only in app-server mode")
        await self._live.interrupt_turn()

    async def steer(self, text: str) -> None:
        """Send ``text`` into the running turn (app-server mode only)."""
        if self._live is None:
            raise AuraError("codex can steer a running turn only in app-server mode "
                            "(a run whose approvals a person answers)")
        await self._live.steer(text)

    async def interrupt(self, child: Child) -> None:
        await interrupt_then_stop(child)
