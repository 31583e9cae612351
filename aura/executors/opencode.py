"""opencode (``opencode-ai`` on npm): ``opencode run --format json``.

Command: ``opencode run --format json --thinking [--model provider/model] [--variant V]
[--agent A] [--attach URL | --port N] [--auto] [params] [--session SID] PROMPT``.
``[executors.opencode]`` in the config may set ``variant``, ``agent``, ``host`` and
``port`` (a host means attaching to a running ``opencode serve`` at http://HOST:PORT; a
port alone picks the port of the local server), ``attach`` (a full URL) and ``env`` (a
table of environment variables for opencode).

Approvals: ``--yolo`` allows every permission through ``OPENCODE_CONFIG_CONTENT``
(``{"permission": {"*": "allow", "edit": "allow", "bash": "allow", …}}``), merged into
whatever config content the user already passes that way; ``--auto-approve true`` →
``--auto`` (opencode approves what is not explicitly denied), ``false`` → nothing (the
default: opencode run rejects what would need asking). With a person answering approvals
(an approver on the request, no --yolo) the turn runs ``opencode acp`` with the asking
permissions set to ``ask`` instead (aura.executors.acp.agents).

Events (each carries ``sessionID``, the native session id): ``step_start``, ``tool_use``
(a finished tool part: completed or error), ``text``, ``reasoning``, ``step_finish``
(tokens and cost of one model request), ``error``.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from aura.contracts import Entry, ToolAction
from aura.errors import ConfigError, UsageError
from aura.executors.base import (
    CommandExecutor,
    Invocation,
    LineParser,
    Outcome,
    Output,
    RunRequest,
)
from aura.executors.events import event_type, native_id, raw_entry
from aura.executors.jsonevents import (
    ASSISTANT,
    ERROR,
    THINKING,
    USAGE,
    JsonEventParser,
    as_text,
    interrupt_then_stop,
    patch_files,
)
from aura.process import Child

# tool name → (action, input field naming the target)
TOOLS: dict[str, tuple[ToolAction, str]] = {
    "write": (ToolAction.FILE_WRITE, "filePath"),
    "edit": (ToolAction.FILE_EDIT, "filePath"),
    "multiedit": (ToolAction.FILE_EDIT, "filePath"),
    "patch": (ToolAction.FILE_EDIT, "patchText"),
    "apply_patch": (ToolAction.FILE_EDIT, "patchText"),
    "read": (ToolAction.FILE_READ, "filePath"),
    "list": (ToolAction.FILE_READ, "path"),
    "bash": (ToolAction.COMMAND, "command"),
    "grep": (ToolAction.SEARCH, "pattern"),
    "glob": (ToolAction.SEARCH, "pattern"),
    "codesearch": (ToolAction.SEARCH, "query"),
    "lsp": (ToolAction.SEARCH, "query"),
    "webfetch": (ToolAction.WEB_FETCH, "url"),
    "websearch": (ToolAction.WEB_FETCH, "query"),
    "todowrite": (ToolAction.TODO, "todos"),
    "todoread": (ToolAction.TODO, ""),
    "task": (ToolAction.TASK, "description"),
}

# What --yolo allows: everything ("*"), and the permissions opencode documents by name,
# so that a user's own rule for one of them cannot outrank the wildcard.
YOLO_PERMISSION = {key: "allow" for key in (
    "*", "edit", "bash", "webfetch", "websearch", "external_directory", "doom_loop")}

# The review: no edits, no commands, nothing outside the workspace.
READ_ONLY_PERMISSION = {"edit": "deny", "bash": "deny", "external_directory": "deny"}

_PATH_FIELDS = ("filePath", "path")


class OpencodeParser(JsonEventParser):
    def handle(self, event: dict[str, Any], line: str) -> list[Entry]:
        kind = event_type(event)
        session = native_id(event.get("sessionID"))
        if session and self.native_session_id is None:
            # The first id is the run's session; sub-agents' parts are filtered by opencode.
            self.native_session_id = session
        part = event.get("part") or {}
        if kind == "tool_use":
            return [self._tool(part)]
        if kind == "text":
            text = part.get("text") or ""
            return [{"kind": ASSISTANT, "text": text}] if text else []
        if kind == "reasoning":
            text = part.get("text") or ""
            return [{"kind": THINKING, "text": text}] if text else []
        if kind == "step_start":
            return []  # a marker with no content
        if kind == "step_finish":
            return [self._usage(part)]
        if kind == "error":
            message = self._error_message(event.get("error"))
            self.error = message
            return [{"kind": ERROR, "text": message}]
        return [raw_entry(line)]

    @staticmethod
    def _error_message(error: Any) -> str:
        if isinstance(error, dict):
            data = error.get("data")
            if not isinstance(data, dict):
                data = {}
            message = data.get("message") or error.get("message")
            name = error.get("name")
            if message and name:
                return f"{name}: {message}"
            return str(message or name or json.dumps(error))
        return str(error or "error")

    @staticmethod
    def _usage(part: dict[str, Any]) -> Entry:
        tokens = part.get("tokens") or {}
        cache = tokens.get("cache") or {}
        usage: dict[str, Any] = {}
        for ours, value in (("input_tokens", tokens.get("input")),
                            ("output_tokens", tokens.get("output")),
                            ("reasoning_tokens", tokens.get("reasoning")),
                            ("cached_input_tokens", cache.get("read"))):
            if isinstance(value, int):
                usage[ours] = value
        if isinstance(part.get("cost"), (int, float)):
            usage["cost_usd"] = part["cost"]
        entry: Entry = {"kind": USAGE, "usage": usage}  # type: ignore[typeddict-item]
        if part.get("reason"):
            entry["data"] = {"reason": part["reason"]}
        return entry

    def _tool(self, part: dict[str, Any]) -> Entry:
        tool = str(part.get("tool") or "")
        state = part.get("state") or {}
        args = state.get("input") or {}
        action, field = TOOLS.get(tool, (ToolAction.OTHER, ""))
        data: dict[str, Any] | None = None
        if tool in ("patch", "apply_patch"):
            files = patch_files(str(args.get("patchText") or ""))
            if files and all(kind == "add" for kind, _ in files):
                action = ToolAction.FILE_WRITE
            target = ", ".join(self.target(path) for _, path in files)
        elif field == "todos":
            todos = args.get("todos") or []
            target = f"{sum(1 for t in todos if t.get('status') == 'completed')}/{len(todos)} done"
        elif field:
            value = args.get(field) or ""
            target = self.target(value) if field in _PATH_FIELDS else as_text(value)
            if tool == "grep" and args.get("path"):
                data = {"path": self.target(str(args["path"]))}
        else:
            target = str(state.get("title") or "")
        status = state.get("status")
        call_id = str(part.get("callID") or part.get("id") or "")
        if status in ("pending", "running"):
            return self.tool_start(call_id, tool, action.value, target, data=data)
        output = state.get("error") if status == "error" else state.get("output")
        return self.tool_end(call_id, "error" if status == "error" else "ok", tool=tool,
                             action=action.value, target=target, output=as_text(output),
                             data=data)


ASK_PERMISSION = {"edit": "ask", "bash": "ask", "webfetch": "ask",
                  "external_directory": "ask", "doom_loop": "ask"}


def merged_config(existing: str | None, permission: dict[str, str],
                  model: str | None = None) -> str:
    """The user's OPENCODE_CONFIG_CONTENT with ``permission`` (and ``model``) laid over it."""
    merged = json.loads(_merged_config(existing, permission))
    if model:
        merged["model"] = model
    return json.dumps(merged)


def _merged_config(existing: str | None, permission: dict[str, str]) -> str:
    """The user's OPENCODE_CONFIG_CONTENT with ``permission`` laid over it."""
    config: dict[str, Any] = {}
    if existing:
        try:
            loaded = json.loads(existing)
        except ValueError:
            raise UsageError("OPENCODE_CONFIG_CONTENT is not valid JSON; fix it or drop "
                             "--yolo") from None
        if isinstance(loaded, dict):
            config = loaded
    current = config.get("permission")
    # opencode applies the last rule that matches: the user's own rules go first, so the
    # ones laid over them (moved to the end even where the user named them) win.
    merged = {key: value for key, value in current.items() if key not in permission} \
        if isinstance(current, dict) else {}
    merged.update(permission)
    config["permission"] = merged
    return json.dumps(config)


class OpencodeExecutor(CommandExecutor):
    name = "opencode"
    program = "opencode"
    npx_package = "opencode-ai"
    description = ("opencode (opencode run --format json; opencode acp when a person "
                   "answers approvals)")
    features: ClassVar[frozenset[str]] = frozenset(
        {"resume", "models", "--yolo", "--auto-approve", "approvals", "interrupt"})

    def validate(self, request: RunRequest) -> None:
        super().validate(request)
        if request.model and "/" not in request.model:
            raise UsageError(f"opencode models are provider/model (e.g. "
                             f"anthropic/claude-sonnet-4-5), not {request.model!r}")
        port = request.settings.get("port")
        if port is not None and (not isinstance(port, int) or isinstance(port, bool)):
            raise ConfigError(f"[executors.opencode] port = {port!r} is not a number")
        if not isinstance(request.settings.get("env", {}), dict):
            raise ConfigError("[executors.opencode] env must be a table of strings")

    def settings_args(self, request: RunRequest) -> list[str]:
        settings = request.settings
        argv: list[str] = []
        for key in ("variant", "agent"):
            value = settings.get(key)
            if value is not None:
                argv += [f"--{key}", str(value)]
        host, port, attach = settings.get("host"), settings.get("port"), settings.get("attach")
        if attach is not None:
            argv += ["--attach", str(attach)]
        elif host is not None:
            argv += ["--attach", f"http://{host}:{port or 4096}"]
        elif port is not None:
            argv += ["--port", str(port)]
        return argv

    read_only_mode = "permission edit/bash denied (OPENCODE_CONFIG_CONTENT)"

    def build_command(self, request: RunRequest) -> Invocation:
        argv = [*self.base_argv(request), "run", "--format", "json", "--thinking"]
        if request.model:
            argv += ["--model", request.model]
        argv += self.settings_args(request)
        if request.approvals.auto_approve and not request.read_only:
            argv.append("--auto")
        argv += list(request.params)
        if request.native_session_id:
            argv += ["--session", request.native_session_id]
        if request.prompt.startswith("-"):
            argv.append("--")
        argv.append(request.prompt)
        env = request.child_env()
        for key, value in (request.settings.get("env") or {}).items():
            if str(key) not in request.env:  # --var wins over the config
                env[str(key)] = str(value)
        if request.read_only:
            env["OPENCODE_CONFIG_CONTENT"] = _merged_config(
                env.get("OPENCODE_CONFIG_CONTENT"), READ_ONLY_PERMISSION)
        elif request.approvals.yolo:
            env["OPENCODE_CONFIG_CONTENT"] = _merged_config(
                env.get("OPENCODE_CONFIG_CONTENT"), YOLO_PERMISSION)
        return Invocation(argv=argv, env=env)

    def parser(self, request: RunRequest) -> LineParser:
        return OpencodeParser(request.cwd)

    def acp_env(self, request: RunRequest) -> dict[str, str]:
        """The environment of ``opencode acp``: every asking permission set to ask
        (edits allowed with --auto-approve true), the model in the config content."""
        env = request.child_env()
        for key, value in (request.settings.get("env") or {}).items():
            if str(key) not in request.env:
                env[str(key)] = str(value)
        permission = {**ASK_PERMISSION, "edit": "allow"} if \
            request.approvals.auto_approve else ASK_PERMISSION
        env["OPENCODE_CONFIG_CONTENT"] = merged_config(
            env.get("OPENCODE_CONFIG_CONTENT"), permission, model=request.model)
        return env

    async def run(self, request: RunRequest, output: Output) -> Outcome:
        """The ACP mode when a person answers approvals (see aura.executors.acp.agents),
        else the usual one."""
        from aura.executors.acp.agents import OpencodeAcpExecutor, asks_person

        if asks_person(request):
            acp = OpencodeAcpExecutor(self.acp_env(request))
            return await self.run_through(acp, request, output)
        return await super().run(request, output)

    async def interrupt(self, child: Child) -> None:
        await interrupt_then_stop(child)
