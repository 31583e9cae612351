"""claude's control protocol: a turn whose tool calls a person approves.

Launch: ``claude -p --input-format stream-json --output-format stream-json --verbose
--permission-prompt-tool stdio --permission-mode default|acceptEdits`` (plus the session
flags of the plain mode). Over stdin aura writes ``control_request initialize``, then the
prompt as one ``user`` line; stdout is the usual stream-json (parsed by
``StreamJsonParser``, so entries, usage and the native session id are what the plain mode
gives) interleaved with the control messages:

- ``control_request can_use_tool`` → an ``ApprovalRequest`` for ``request.approver``
  (Bash → command, Write/Edit/MultiEdit/NotebookEdit → file change, anything else → tool);
  answered ``behavior: allow`` with ``updatedInput`` (plus ``updatedPermissions`` = the
  agent's ``permission_suggestions``, their destination rewritten to ``session``, for
  "allow for this session") or ``behavior: deny`` with the person's message;
- ``control_cancel_request`` → the agent withdrew a pending request: ``approver.withdraw``;
- ``control_response`` → the answer to aura's own requests (initialize, interrupt).

The turn ends at the ``result`` line: aura closes stdin and claude exits (with code 1 after
an ``is_error`` result, which is the result's failure, already recorded). Cancelling the
run sends ``control_request interrupt`` first (claude withdraws what it was asking and ends
the turn with ``error_during_execution``), so the session stays resumable.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from typing import Any

from aura.approvals import (
    ApprovalKind,
    ApprovalOption,
    ApprovalRequest,
    Choice,
    Decision,
    OptionKind,
)
from aura.contracts import Entry, EntryKind
from aura.errors import AgentExited
from aura.executors.base import Approver, Output, RunRequest, stderr_entries
from aura.executors.streamjson import StreamJsonParser
from aura.process import Child

CONTROL_ARGS = ("--input-format", "stream-json", "--output-format", "stream-json",
                "--verbose", "--permission-prompt-tool", "stdio")
FILE_TOOLS = frozenset({"write", "edit", "multiedit", "notebookedit"})
ALLOW = ApprovalOption("allow", "Allow", OptionKind.ALLOW_ONCE)
ALLOW_SESSION = ApprovalOption("allow_session", "Allow for this session",
                               OptionKind.ALLOW_SESSION)
DENY = ApprovalOption("deny", "Deny", OptionKind.DENY)
STARTUP_TIMEOUT = 300.0
CANCEL_GRACE = 3.0
EXIT_GRACE = 5.0


def session_suggestions(raw: Any) -> list[dict[str, Any]]:
    """claude's suggestions, each kept to this session (``localSettings`` would write an
    allow rule to .claude/settings.local.json)."""
    return [{**item, "destination": "session"} for item in raw if isinstance(item, dict)] \
        if isinstance(raw, list) else []


def approval_request(request_id: str, ask: dict[str, Any], cwd: str) -> ApprovalRequest:
    """An ``ApprovalRequest`` of one ``can_use_tool`` request."""
    tool = str(ask.get("tool_name") or "tool")
    shown = str(ask.get("display_name") or tool)
    raw_input = ask.get("input")
    tool_input: dict[str, Any] = raw_input if isinstance(raw_input, dict) else {}
    description = ask.get("description")
    detail: dict[str, Any] = {"tool": tool, "input": tool_input, "cwd": cwd}
    if isinstance(description, str) and description:
        detail["description"] = description
    if ask.get("blocked_path"):
        detail["paths"] = [str(ask["blocked_path"])]
    if tool.lower() == "bash" and isinstance(tool_input.get("command"), str):
        kind = ApprovalKind.COMMAND
        detail["command"] = tool_input["command"]
        title = f"Run `{tool_input['command']}`"
    elif tool.lower() in FILE_TOOLS:
        kind = ApprovalKind.FILE_CHANGE
        path = tool_input.get("file_path") or tool_input.get("notebook_path") or description
        detail["paths"] = [str(path)] if path else []
        title = f"{shown} {path}" if path else shown
    else:
        kind = ApprovalKind.TOOL
        title = f"{shown}: {description}" if description else shown
    suggestions = session_suggestions(ask.get("permission_suggestions"))
    options = (ALLOW, ALLOW_SESSION, DENY) if suggestions else (ALLOW, DENY)
    if suggestions:
        detail["session_rules"] = suggestions
    return ApprovalRequest(request_id, kind, title[:500], detail, options)


def permission_answer(ask: dict[str, Any], decision: Decision) -> dict[str, Any]:
    """The ``can_use_tool`` answer for ``decision``."""
    if not decision.allowed:
        return {"behavior": "deny", "message": decision.message or
                f"denied{f' by {decision.by}' if decision.by else ''}"}
    answer: dict[str, Any] = {"behavior": "allow", "updatedInput": ask.get("input") or {}}
    if decision.choice is Choice.ALLOW_SESSION:
        suggestions = session_suggestions(ask.get("permission_suggestions"))
        if suggestions:
            answer["updatedPermissions"] = suggestions
    return answer


def control_response(request_id: str, response: dict[str, Any] | None = None,
                     error: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"subtype": "error" if error else "success",
                            "request_id": request_id}
    if error:
        body["error"] = error
    else:
        body["response"] = response or {}
    return {"type": "control_response", "response": body}


class ControlTurn:
    """One claude process in the control protocol, for one turn."""

    def __init__(self, request: RunRequest, output: Output, approver: Approver) -> None:
        self.request = request
        self.output = output
        self.approver = approver
        self.parser = StreamJsonParser(request.cwd)
        self.child: Child | None = None
        self.result: asyncio.Event = asyncio.Event()
        self.failure: BaseException | None = None
        self.asking: dict[str, asyncio.Task[Decision]] = {}
        self._waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._writes: set[asyncio.Task[None]] = set()
        self._ids = 0
        self._reported: str | None = None
        self._started = False  # the prompt was sent

    # -- what claude sends -----------------------------------------------------------

    def on_lines(self, stream: str, lines: list[str]) -> None:
        if stream != "stdout":
            self.output.emit(stderr_entries(lines))
            return
        entries: list[Entry] = []
        for line in lines:
            head = line[:40]
            obj = _json(line) if '"control_' in head or '"result"' in head else None
            kind = obj.get("type") if obj is not None else None
            if kind in ("control_request", "control_response", "control_cancel_request"):
                entries.extend(self._control(kind, obj or {}))
                continue
            entries.extend(self.parser.feed(line))
            if kind == "result":
                self.result.set()
        if entries:
            self.output.emit(entries)
        native = self.parser.native_session_id
        if native and native != self._reported:
            self._reported = native
            self.output.set_native_session_id(native)

    def _control(self, kind: str, obj: dict[str, Any]) -> list[Entry]:
        if kind == "control_response":
            body = obj.get("response")
            if isinstance(body, dict):
                waiter = self._waiting.pop(str(body.get("request_id")), None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(body)
            return []
        request_id = str(obj.get("request_id") or "")
        if kind == "control_cancel_request":
            return self._withdrawn(request_id)
        ask = obj.get("request")
        if isinstance(ask, dict) and ask.get("subtype") == "can_use_tool":
            self._ask(request_id, ask)
            return []
        what = ask.get("subtype") if isinstance(ask, dict) else None
        self.send(control_response(request_id, error=f"aura does not implement {what}"))
        return [{"kind": EntryKind.SYSTEM.value,
                 "text": f"claude asked for {what}, which aura does not offer "
                         "(answered with an error)"}]

    def _ask(self, request_id: str, ask: dict[str, Any]) -> None:
        question = approval_request(request_id, ask, self.request.cwd)
        task = asyncio.create_task(self.approver.ask(question))
        self.asking[request_id] = task

        def answered(done: asyncio.Task[Decision]) -> None:
            self.asking.pop(request_id, None)
            if done.cancelled():
                return
            error = done.exception()
            if error is not None:  # the approver broke: end the turn, say why
                self.failure = error
                self.result.set()
                return
            self.send(control_response(request_id, permission_answer(ask, done.result())))

        task.add_done_callback(answered)

    def _withdrawn(self, request_id: str) -> list[Entry]:
        task = self.asking.pop(request_id, None)
        if task is None:
            return []
        self.approver.withdraw(request_id)
        task.cancel()
        return [{"kind": EntryKind.SYSTEM.value,
                 "text": f"claude withdrew its approval request {request_id}"}]

    # -- what aura sends -------------------------------------------------------------

    def send(self, message: dict[str, Any]) -> None:
        """Write one line to claude's stdin; lines leave in the order they are sent
        (each write task starts with the synchronous write)."""
        if self.child is None:
            return
        data = json.dumps(message, ensure_ascii=False).encode() + b"\n"
        task = asyncio.create_task(self.child.write(data))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    def control(self, subtype: str, **fields: Any) -> asyncio.Future[dict[str, Any]]:
        self._ids += 1
        request_id = f"req_{self._ids}_{secrets.token_hex(4)}"
        waiter: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = waiter
        self.send({"type": "control_request", "request_id": request_id,
                   "request": {"subtype": subtype, **fields}})
        return waiter

    def running(self) -> bool:
        """The turn has started and not given its result; claude still reads stdin."""
        return self.child is not None and self.child.returncode is None and \
            self._started and not self.result.is_set()

    def steer(self, text: str) -> None:
        """A user message: the prompt, or (while a turn runs) folded into that turn."""
        self.send({"type": "user", "message": {"role": "user", "content": text},
                   "parent_tool_use_id": None,
                   "session_id": self.parser.native_session_id or ""})

    async def interrupt(self, grace: float = CANCEL_GRACE) -> None:
        """End the running turn the gentle way and wait a little for its result."""
        if self.child is None or self.child.returncode is not None:
            return
        self.control("interrupt")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.result.wait(), grace)

    # -- the turn --------------------------------------------------------------------

    async def run(self, argv: list[str], env: dict[str, str]) -> tuple[int, str | None]:
        """Spawn claude, hand over the prompt, wait for the turn's result; the exit code
        and why the turn failed."""
        self.child = child = await Child.spawn(
            argv, on_lines=self.on_lines, cwd=self.request.cwd, env=env,
            keep_stdin_open=True, line_cap=self.request.line_cap)
        exited = asyncio.create_task(child.wait())
        try:
            init = self.control("initialize", hooks=None)
            waiting: set[asyncio.Future[Any]] = {init, exited}
            done, _ = await asyncio.wait(waiting, timeout=STARTUP_TIMEOUT,
                                         return_when=asyncio.FIRST_COMPLETED)
            if init not in done:
                init.cancel()
                return await self._gone(exited, "claude did not answer initialize")
            self.steer(self.request.prompt)
            self._started = True
            ended = asyncio.create_task(self.result.wait())
            await asyncio.wait({ended, exited}, return_when=asyncio.FIRST_COMPLETED)
            ended.cancel()
            if self.failure is not None:
                raise self.failure
            if not self.result.is_set():
                return await self._gone(exited, "claude exited before the turn ended")
            child.close_stdin()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(exited), EXIT_GRACE)
            # After an is_error result claude exits 1 on end of input: the turn's
            # failure is the result's, the exit code follows it.
            return (1 if self.parser.error else 0), self.parser.error
        except asyncio.CancelledError:
            await asyncio.shield(self.interrupt())
            raise
        finally:
            for task in list(self.asking.values()):
                task.cancel()
            if child.returncode is None:
                await asyncio.shield(child.stop(grace=1.0))
            exited.cancel()
            with contextlib.suppress(asyncio.CancelledError, AgentExited):
                await exited

    async def _gone(self, exited: asyncio.Task[int], why: str) -> tuple[int, str | None]:
        code = await exited if exited.done() else None
        if code is None:
            return 1, why
        return (code or 1), self.parser.error or f"{why} (exit code {code})"


def _json(line: str) -> dict[str, Any] | None:
    try:
        obj = json.loads(line)
    except ValueError:
        return None
    return obj if isinstance(obj, dict) else None
