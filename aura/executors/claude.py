"""claude (Claude Code) headless: ``claude -p PROMPT --output-format stream-json --verbose``.

- Prompt: argv after ``-p``; a prompt that starts with ``-`` or is very long goes on
  stdin instead (``claude -p`` reads it there), so it is never taken for an option.
- New session: aura picks the id (``--session-id UUID``) and stores it before claude
  prints anything. Follow-up: ``--resume NATIVE_ID``.
- ``--model M`` → ``--model M``; ``--yolo`` → ``--dangerously-skip-permissions`` (plus
  ``IS_SANDBOX=1`` when running as root, which claude otherwise refuses; any other value,
  even ``yes``, is refused too);
  ``--auto-approve true|false`` → ``--permission-mode acceptEdits|default``.
- Output: stream-json (see streamjson.py).
- Approvals: with an approver on the request (and no ``--yolo``) the turn runs in the
  control-protocol mode of aura.executors.claude_control instead, where each tool call
  claude would ask about goes to a person; the session flags are the same. Only that
  mode can be steered (another ``user`` line, folded into the running turn) and
  interrupted (``control_request interrupt``) from another terminal.
"""

from __future__ import annotations

import os
import time
import uuid
from typing import TYPE_CHECKING, ClassVar

from aura.contracts import EntryKind
from aura.executors.base import (
    Attempt,
    CommandExecutor,
    Invocation,
    LineParser,
    Outcome,
    Output,
    RunRequest,
    _Watch,
)
from aura.executors.streamjson import StreamJsonParser

if TYPE_CHECKING:
    from aura.executors.claude_control import ControlTurn

# Longer prompts go on stdin: one argv string is capped at 128 KiB on Linux.
ARGV_PROMPT_LIMIT = 100_000


def prompt_on_stdin(prompt: str) -> bool:
    """Whether a prompt must be delivered on stdin rather than as an argument."""
    return prompt.startswith("-") or len(prompt.encode()) > ARGV_PROMPT_LIMIT


def running_as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


class ClaudeExecutor(CommandExecutor):
    name = "claude"
    program = "claude"
    description = "Claude Code (stream-json; asks approvals over its control protocol)"
    features: ClassVar[frozenset[str]] = frozenset(
        {"resume", "models", "--yolo", "--auto-approve", "approvals", "steer", "interrupt"})
    read_only_mode = "--permission-mode plan"
    _live: ControlTurn | None = None  # the control-protocol turn running now

    @staticmethod
    def asks(request: RunRequest) -> bool:
        """Whether this turn needs the control protocol: someone answers approvals and
        no flag already allows everything."""
        return request.approver is not None and not request.approvals.yolo and \
            not request.read_only  # a read-only review runs plain `-p` in plan mode

    def session_args(self, request: RunRequest) -> tuple[list[str], str | None]:
        """--resume the stored native id, or --session-id an id aura picks now."""
        if request.native_session_id:
            return ["--resume", request.native_session_id], None
        assigned = str(uuid.uuid4())
        return ["--session-id", assigned], assigned

    def control_command(self, request: RunRequest) -> tuple[list[str], str | None]:
        from aura.executors.claude_control import CONTROL_ARGS

        mode = "plan" if request.read_only else \
            "acceptEdits" if request.approvals.auto_approve else "default"
        session, assigned = self.session_args(request)
        argv = [*self.base_argv(request), "-p", *CONTROL_ARGS, "--permission-mode", mode,
                *session]
        if request.model:
            argv += ["--model", request.model]
        return argv + list(request.params), assigned

    async def _run_once(self, request: RunRequest, output: Output
                        ) -> tuple[Outcome, Attempt]:
        if not self.asks(request):
            return await super()._run_once(request, output)
        from aura.executors.claude_control import ControlTurn

        assert request.approver is not None
        argv, assigned = self.control_command(request)
        if assigned:
            output.set_native_session_id(assigned)
        watch = _Watch(output)
        turn = ControlTurn(request, watch, request.approver)
        started = time.monotonic()
        self._live = turn
        try:
            code, error = await turn.run(argv, request.child_env())
        finally:
            self._live = None
        native = turn.parser.native_session_id or assigned or request.native_session_id
        return Outcome(code, native, error), Attempt(
            watch.produced, watch.said, time.monotonic() - started)

    def live_controls(self) -> frozenset[str]:
        """Steer and interrupt in the control-protocol mode only (plain ``-p`` reads
        nothing once started), while the turn has not given its result."""
        turn = self._live
        if turn is None or not turn.running():
            return frozenset()
        return frozenset({"steer", "interrupt"})

    async def steer_turn(self, text: str) -> None:
        turn = self._live
        if turn is None or not turn.running():
            await super().steer_turn(text)
            return
        # claude folds it into the running turn and echoes nothing: record it here.
        turn.output.emit([{"kind": EntryKind.USER_MESSAGE.value, "text": text,
                           "data": {"steer": True}}])
        turn.steer(text)

    async def interrupt_turn(self) -> None:
        turn = self._live
        if turn is None or not turn.running():
            await super().interrupt_turn()
            return
        turn.control("interrupt")  # claude ends the turn with error_during_execution

    def build_command(self, request: RunRequest) -> Invocation:
        argv = self.base_argv(request)
        stdin: bytes | None = None
        if prompt_on_stdin(request.prompt):
            argv += ["-p"]
            stdin = request.prompt.encode()
        else:
            argv += ["-p", request.prompt]
        argv += ["--output-format", "stream-json", "--verbose"]
        env = request.child_env()
        session, assigned = self.session_args(request)
        argv += session
        if request.model:
            argv += ["--model", request.model]
        approvals = request.approvals
        if request.read_only:
            argv += ["--permission-mode", "plan"]
        elif approvals.yolo:
            argv.append("--dangerously-skip-permissions")
            if running_as_root():
                env["IS_SANDBOX"] = "1"  # claude accepts only "1" ("yes" is refused)
        elif approvals.auto_approve is not None:
            argv += ["--permission-mode",
                     "acceptEdits" if approvals.auto_approve else "default"]
        argv += request.params
        return Invocation(argv=argv, env=env, stdin=stdin, native_session_id=assigned)

    def parser(self, request: RunRequest) -> LineParser:
        return StreamJsonParser(request.cwd)
