"""droid (Factory) headless: ``droid exec --output-format stream-json [flags] PROMPT``.

- Prompt: the last argument; one starting with ``-`` or very long goes on stdin instead
  (``droid exec`` reads it there).
- Follow-up: ``--session-id NATIVE_ID``. droid keeps sessions in Factory's cloud; where
  that resume is refused (droid 0.215 exits 1 without a word), aura's base starts a fresh
  droid session seeded with the transcript and says so.
- Approvals: ``--yolo`` → ``--skip-permissions-unsafe``; otherwise ``--auto LEVEL`` from
  ``--auto-approve true`` (the configured autonomy, else ``high``) or from the config's
  ``[executors.droid] autonomy = "low|medium|high"``; ``--auto-approve false`` keeps droid's
  read-only default. A person answers droid's approvals when the config chooses one of its
  approval protocols: ``[executors.droid] protocol = "acp"`` (``droid exec --output-format
  acp``, see aura.executors.acp.agents) or ``"stream-jsonrpc"`` (droid's own JSON-RPC mode,
  aura.executors.droid_jsonrpc); without it droid runs as above and answers by its flags.
  ``[executors.droid] reasoning_effort = "…"`` → ``--reasoning-effort``.
  ``--model M`` → ``--model M``.
- Output: droid's own stream-json — ``system`` init (session_id), ``message`` (role user
  echo / assistant text), ``tool_call`` (id, toolName, parameters), ``tool_result`` (id,
  isError, value), ``completion`` (finalText, usage, session_id), ``error``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, cast

from aura.contracts import Entry, Usage
from aura.errors import ConfigError
from aura.executors.base import CommandExecutor, Invocation, LineParser, Outcome, Output, RunRequest
from aura.executors.claude import prompt_on_stdin
from aura.executors.streamjson import StreamJsonParser, echo, normalize_usage, result_text

if TYPE_CHECKING:
    from aura.executors.droid_jsonrpc import JsonRpcTurn

AUTONOMY_LEVELS = ("low", "medium", "high")


class DroidParser(StreamJsonParser):
    def __init__(self, cwd: str | None = None) -> None:
        super().__init__(cwd)
        self.handlers.update({
            "message": self.on_message,
            "tool_call": self.on_tool_call,
            "tool_result": self.on_tool_result,
            "completion": self.on_completion,
            "error": self.on_error,
            "reasoning": self.on_reasoning,
            "thinking": self.on_reasoning,
        })

    def on_message(self, obj: dict[str, Any], line: str) -> list[Entry]:
        text = obj.get("text")
        if not isinstance(text, str):
            text = result_text(obj.get("content"))
        if obj.get("role") == "assistant":
            if not text:
                return []
            self.turn_text = True
            return [{"kind": "assistant_message", "text": text}]
        return [echo(text, str(obj.get("role") or "user"))]

    def on_reasoning(self, obj: dict[str, Any], line: str) -> list[Entry]:
        text = obj.get("text") or obj.get("reasoning") or ""
        return [{"kind": "thinking", "text": text}] if text else []

    def on_tool_call(self, obj: dict[str, Any], line: str) -> list[Entry]:
        name = str(obj.get("toolName") or obj.get("toolId") or "")
        return [self.tool_start(str(obj.get("id") or ""), name, obj.get("parameters"))]

    def on_tool_result(self, obj: dict[str, Any], line: str) -> list[Entry]:
        value = obj.get("value")
        return [self.tool_end(str(obj.get("id") or ""), not obj.get("isError"),
                              value if isinstance(value, str) else result_text(value),
                              tool=obj.get("toolId"))]

    def on_completion(self, obj: dict[str, Any], line: str) -> list[Entry]:
        out: list[Entry] = []
        final = obj.get("finalText")
        if isinstance(final, str) and final and not self.turn_text:
            out.append({"kind": "assistant_message", "text": final})
        usage = obj.get("usage")
        if isinstance(usage, Mapping):
            out.append({"kind": "usage", "usage": cast(Usage, normalize_usage(usage))})
        self.turn_text = False
        return out

    def on_error(self, obj: dict[str, Any], line: str) -> list[Entry]:
        message = obj.get("message") or obj.get("error") or obj.get("text") or line
        self.error = str(message)
        return [{"kind": "error", "text": self.error}]


class DroidExecutor(CommandExecutor):
    name = "droid"
    program = "droid"
    description = ("Factory droid (exec, stream-json; autonomy and reasoning effort; "
                   "exec --output-format acp when a person answers approvals)")
    features: ClassVar[frozenset[str]] = frozenset(
        {"resume", "models", "--yolo", "--auto-approve", "approvals", "interrupt"})

    def autonomy(self, request: RunRequest) -> str | None:
        configured = request.settings.get("autonomy")
        if configured is not None and configured not in AUTONOMY_LEVELS:
            raise ConfigError(f"[executors.droid] autonomy = {configured!r}: use one of "
                              f"{', '.join(AUTONOMY_LEVELS)}")
        approve = request.approvals.auto_approve
        if approve is False:
            return None
        if approve is True:
            return configured or "high"
        return configured

    read_only_mode = "droid exec without --auto (its read-only default)"

    def build_command(self, request: RunRequest) -> Invocation:
        argv = [*self.base_argv(request), "exec", "--output-format", "stream-json"]
        if request.model:
            argv += ["--model", request.model]
        if request.read_only:
            pass  # `droid exec` without --auto is read-only
        elif request.approvals.yolo:
            argv.append("--skip-permissions-unsafe")
        else:
            level = self.autonomy(request)
            if level:
                argv += ["--auto", level]
        effort = request.settings.get("reasoning_effort")
        if effort:
            argv += ["--reasoning-effort", str(effort)]
        if request.native_session_id:
            argv += ["--session-id", request.native_session_id]
        argv += request.params
        stdin: bytes | None = None
        if prompt_on_stdin(request.prompt):
            stdin = request.prompt.encode()
        else:
            argv.append(request.prompt)
        return Invocation(argv=argv, env=request.child_env(), stdin=stdin)

    def parser(self, request: RunRequest) -> LineParser:
        return DroidParser(request.cwd)

    def validate(self, request: RunRequest) -> None:
        super().validate(request)
        protocol = request.settings.get("protocol")
        if protocol not in (None, "acp", "stream-jsonrpc"):
            raise ConfigError(f"[executors.droid] protocol = {protocol!r}: use \"acp\" or "
                              "\"stream-jsonrpc\" (how droid asks for approvals)")

    async def run_jsonrpc(self, request: RunRequest, output: Output) -> Outcome:
        """droid's own JSON-RPC mode (aura.executors.droid_jsonrpc)."""
        from aura.executors.droid_jsonrpc import ARGS, JsonRpcTurn

        assert request.approver is not None
        argv = [*self.base_argv(request), *ARGS]
        if request.model:
            argv += ["--model", request.model]
        turn = JsonRpcTurn(request, output, request.approver)
        self._jsonrpc = turn
        try:
            code, error = await turn.run(argv + list(request.params), request.child_env())
        finally:
            self._jsonrpc = None
        return Outcome(code, turn.session_id, error)

    _jsonrpc: JsonRpcTurn | None = None  # the stream-jsonrpc turn running now

    def live_controls(self) -> frozenset[str]:
        """Interrupt in droid's protocol modes (``droid.interrupt_session`` in
        stream-jsonrpc, ``session/cancel`` in ACP); ``droid exec`` reads nothing."""
        turn = self._jsonrpc
        if turn is not None:
            return frozenset({"interrupt"}) if turn.running() else frozenset()
        return super().live_controls()

    async def interrupt_turn(self) -> None:
        turn = self._jsonrpc
        if turn is None or not turn.running():
            await super().interrupt_turn()
            return
        turn.call("droid.interrupt_session", {})

    async def run(self, request: RunRequest, output: Output) -> Outcome:
        """The ACP mode when a person answers approvals (see aura.executors.acp.agents),
        else the usual one."""
        from aura.executors.acp.agents import DroidAcpExecutor, asks_person

        # droid's approval protocols are chosen in the config: its ACP mode needs a Factory
        # key and a model switch for BYOK models, its stream-jsonrpc mode cannot resume.
        protocol = request.settings.get("protocol")
        if asks_person(request) and protocol == "stream-jsonrpc":
            return await self.run_jsonrpc(request, output)
        if asks_person(request) and protocol == "acp":
            return await self.run_through(DroidAcpExecutor(), request, output)
        return await super().run(request, output)
