"""codex through ``codex app-server``: one aura turn over JSON-RPC on the child's stdio, so
that a person (through ``RunRequest.approver``) answers codex's approval requests.

The dialect is JSON-RPC 2.0 without the ``"jsonrpc"`` member, one object per line
(``aura.rpc.LineChannel`` with ``bare=True``). The server's own requests carry integer ids
counted from 0 that overlap the client's; the engine routes by whether a message has a
``method``. One aura run is one turn in one process:

    initialize {clientInfo} → initialized
    thread/start {approvalPolicy, sandbox, cwd[, model]}        → thread.id = the native id
      or thread/resume {threadId, approvalPolicy, sandbox, cwd}  a follow-up
    turn/start {threadId, input: [{type: text, text}]}          → turn.id
    … item/* notifications, approval requests …, turn/completed
    close stdin, then the process ladder

Approvals: ``item/commandExecution/requestApproval`` and ``item/fileChange/requestApproval``
go to the approver (aura.executors.codex_items builds the requests and the answers).
``serverRequest/resolved`` for a request still waiting withdraws it; so does the end of the
turn (codex resolves a request pending at an interrupt only after the next turn/start).

Ctrl-C (the task cancelled): ``turn/interrupt {threadId, turnId}``, a short wait for
``turn/completed`` (status interrupted), then the process ladder; the thread can be
followed up. ``steer(text)`` sends ``turn/steer`` into the running turn;
``interrupt_turn()`` sends ``turn/interrupt`` without cancelling (`aura session interrupt`).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from aura import __version__
from aura.approvals import Choice, Decision
from aura.contracts import Entry, EntryKind
from aura.errors import AgentExited, AuraError
from aura.executors.acp.client import startup_timeout
from aura.executors.base import Outcome, Output, RunRequest, stderr_entries, transcript_prompt
from aura.executors.codex_items import APPROVAL_METHODS, ItemTranslator, answer
from aura.executors.jsonevents import JsonEventParser
from aura.process import Child
from aura.rpc import ConnectionLost, Handler, LineChannel, Message, RpcError

STOP_GRACE = 2.0
INTERRUPT_GRACE = 5.0  # seconds for turn/completed after turn/interrupt


def thread_params(request: RunRequest) -> dict[str, Any]:
    """Approval policy and sandbox for the thread, from the flags and the config:
    every action that codex would ask about goes to the approver (``untrusted``);
    ``--auto-approve true`` keeps exec's meaning (inside the workspace without asking:
    ``on-request``), ``--auto-approve false`` is read-only."""
    approvals = request.approvals
    sandbox = str(request.settings.get("sandbox") or "workspace-write")
    policy = "untrusted"
    if approvals.auto_approve is True:
        policy, sandbox = "on-request", "workspace-write"
    elif approvals.auto_approve is False:
        sandbox = "read-only"
    params: dict[str, Any] = {"approvalPolicy": policy, "sandbox": sandbox,
                              "cwd": request.cwd}
    if request.model:
        params["model"] = request.model
    return params


class _Channel(LineChannel):
    """The stdio channel, handing server requests their id (the native approval id)."""

    def __init__(self, run: AppServerRun) -> None:
        super().__init__(lambda method: None, run.notification_route, run.junk,
                         name="codex app-server", bare=True)
        self.run = run

    def _handler(self, call: Message) -> Handler | None:
        if call.kind == "request":
            return self.run.request_route(call.method, call.id)
        return super()._handler(call)


class AppServerRun:
    """One turn of codex app-server: the process, the channel, pending approvals."""

    def __init__(self, argv: list[str], request: RunRequest, output: Output,
                 parser: JsonEventParser) -> None:
        self.argv = argv
        self.request = request
        self.output = output
        self.items = ItemTranslator(parser, request.cwd)
        self.channel = _Channel(self)
        self.child: Child | None = None
        self.thread_id: str | None = None
        self.turn_id: str | None = None
        self.completed: dict[str, dict[str, Any]] = {}  # turn id → the finished turn
        self.turn_done = asyncio.Event()
        self.pending: dict[str, asyncio.Future[Decision]] = {}  # native id → the ask
        self.stderr_tail: list[str] = []
        self.stopped = False  # a "cancel" answer ended the turn
        self._line = ""
        self._exit: asyncio.Task[int] | None = None

    # -- what codex sends ----------------------------------------------------------------

    def on_lines(self, stream: str, lines: list[str]) -> None:
        if stream != "stdout":
            self.stderr_tail = (self.stderr_tail + lines)[-20:]
            self.output.emit(stderr_entries(lines))
            return
        for line in lines:
            self._line = line
            self.channel.feed(line)

    def junk(self, line: str) -> None:
        self.output.emit([{"kind": EntryKind.RAW.value, "stream": "stdout", "text": line}])

    def notification_route(self, method: str) -> Handler:
        return lambda params: self.notification(method, params)

    def notification(self, method: str, params: Any) -> None:
        if method == "serverRequest/resolved" and isinstance(params, dict):
            self.withdraw(str(params.get("requestId")))
            return
        if method == "turn/completed" and isinstance(params, dict):
            turn = params.get("turn")
            if isinstance(turn, dict):
                self.completed[str(turn.get("id"))] = turn
                self.turn_done.set()
            return
        entries = self.items.notification(method, params, self._line)
        if entries:
            self.output.emit(entries)

    def request_route(self, method: str, request_id: Any) -> Handler | None:
        if method not in APPROVAL_METHODS:
            self.output.emit([{"kind": EntryKind.SYSTEM.value,
                               "text": f"codex asked for {method}, which aura does not "
                                       "offer (answered with an error)"}])
            return None
        return lambda params: self.approve(method, request_id, params)

    async def approve(self, method: str, request_id: Any, params: Any) -> dict[str, Any]:
        if not isinstance(params, dict):
            raise RpcError(-32602, f"invalid params for {method}")
        approval = self.items.approval(method, request_id, params)
        approver = self.request.approver
        if approver is None:  # the mode needs one; refuse rather than allow
            return {"decision": "decline"}
        ask = asyncio.ensure_future(approver.ask(approval))
        self.pending[approval.native_id] = ask
        try:
            decision = await ask  # CancelledError when withdrawn: then nothing is answered
        finally:
            self.pending.pop(approval.native_id, None)
        if decision.choice is Choice.DENY and decision.message:
            self.output.emit([{"kind": EntryKind.SYSTEM.value,
                               "text": "codex takes no message with a refusal; not passed "
                                       f"on: {decision.message}"}])
        reply = answer(decision, approval)
        if reply["decision"] == "cancel":
            self.stopped = True  # the person ended the turn: "interrupted" is their answer
        return reply

    def withdraw(self, native_id: str) -> None:
        """codex resolved the request itself (or ended the turn): stop asking."""
        ask = self.pending.pop(native_id, None)
        if ask is not None and not ask.done():
            if self.request.approver is not None:
                self.request.approver.withdraw(native_id)
            ask.cancel()

    # -- the conversation ----------------------------------------------------------------

    async def run(self) -> Outcome:
        try:
            await self._start()
            prompt = await self._open_thread()
            started = await self.channel.request("turn/start", {
                "threadId": self.thread_id, "input": [{"type": "text", "text": prompt}]})
            turn = started.get("turn") if isinstance(started, dict) else None
            self.turn_id = str(turn.get("id") or "") if isinstance(turn, dict) else ""
            if not self.turn_id:
                raise RpcError(-32603, f"no turn id in the answer: {str(started)[:200]}")
            while self.turn_id not in self.completed:
                self.turn_done.clear()
                await self._wait(self.turn_done.wait())
        except asyncio.CancelledError:
            await asyncio.shield(self._interrupt())
            raise
        except (AgentExited, ConnectionLost) as exc:
            code = await self.close(0.1)
            self.output.emit(self.items.parser.finish())
            return Outcome(code if code else 1, self.thread_id, f"codex app-server: {exc}")
        except RpcError as exc:
            await self.close(STOP_GRACE)
            return Outcome(1, self.thread_id, f"codex app-server: {exc.message}")
        except BaseException:
            await asyncio.shield(self.close(0.1))
            raise
        return await self._finish(self.completed[self.turn_id])

    async def _finish(self, turn: dict[str, Any]) -> Outcome:
        for native_id in list(self.pending):
            self.withdraw(native_id)
        self.output.emit(self.items.turn_completed(turn))
        await self.close(STOP_GRACE)
        status = turn.get("status")
        if status == "completed" or (status == "interrupted" and self.stopped):
            return Outcome(0, self.thread_id, self.items.error)
        why = self.items.error or f"codex ended the turn: {status}"
        return Outcome(1, self.thread_id, why)

    async def _wait(self, awaitable: Any) -> Any:
        """``awaitable``, or AgentExited as soon as codex exits."""
        waiter = asyncio.ensure_future(awaitable)
        assert self._exit is not None
        done, _ = await asyncio.wait({waiter, self._exit}, return_when=asyncio.FIRST_COMPLETED)
        if waiter in done:
            return waiter.result()
        waiter.cancel()
        raise AgentExited("turn/start", f"codex exited with code {self._exit.result()} "
                                        f"before the turn completed{self._hint()}")

    async def _start(self) -> None:
        self.child = await Child.spawn(self.argv, on_lines=self.on_lines, cwd=self.request.cwd,
                                       env=self.request.child_env(), keep_stdin_open=True,
                                       line_cap=self.request.line_cap)
        self.channel.attach(self.child.write)
        self._exit = asyncio.create_task(self._watch(self.child))
        timeout = startup_timeout(self.request, "codex")
        try:
            await asyncio.wait_for(self.channel.request("initialize", {"clientInfo": {
                "name": "aura", "title": "aura", "version": __version__}}), timeout)
        except TimeoutError:
            raise AuraError(f"codex app-server did not answer initialize within {timeout:g} s"
                            " (raise [executors.codex] startup_timeout if it is just slow "
                            "to start)") from None
        self.channel.notify("initialized", None)

    async def _watch(self, child: Child) -> int:
        code = await child.wait()
        self.channel.close(f"codex exited with code {code}{self._hint()}")
        return code

    def _hint(self) -> str:
        tail = [line.strip() for line in self.stderr_tail if line.strip()]
        return f" ({tail[-1][:200]})" if tail else ""

    async def _open_thread(self) -> str:
        """thread/resume the stored native id, else thread/start (with a transcript of
        the session when a follow-up has no thread to resume). Returns the prompt."""
        request = self.request
        params = thread_params(request)
        native = request.native_session_id
        why = "no codex thread id was stored for this session"
        if native:
            try:
                # The earlier turns are in aura's store already: codex need not send them.
                result = await self.channel.request("thread/resume", {
                    **params, "threadId": native, "excludeTurns": True})
            except RpcError as exc:
                why = f"resuming codex thread {native} failed ({exc.message})"
            else:
                self._thread(result, resumed=True)
                return request.prompt
        result = await self.channel.request("thread/start", params)
        self._thread(result, resumed=False)
        if not native and not request.history:
            return request.prompt
        self.output.emit([{"kind": EntryKind.SYSTEM.value,
                           "text": f"{why}: started codex thread {self.thread_id} seeded "
                                   "with a transcript of this session"}])
        return transcript_prompt(request.history, request.prompt)

    def _thread(self, result: Any, resumed: bool) -> None:
        thread = (result or {}).get("thread") if isinstance(result, dict) else None
        thread_id = thread.get("id") if isinstance(thread, dict) else None
        if not isinstance(thread_id, str) or not thread_id:
            raise RpcError(-32603, f"no thread id in the answer: {str(result)[:200]}")
        self.thread_id = thread_id
        self.output.set_native_session_id(thread_id)
        entries: list[Entry] = self.items.thread(thread_id, resumed)
        self.output.emit(entries)

    async def steer(self, text: str) -> None:
        """Send ``text`` into the running turn (``turn/steer``)."""
        if self.thread_id is None or not self.turn_id or self.turn_id in self.completed:
            raise AuraError("codex has no running turn to steer")
        await self.channel.request("turn/steer", {
            "threadId": self.thread_id, "expectedTurnId": self.turn_id,
            "input": [{"type": "text", "text": text}]})

    def running(self) -> bool:
        """A turn has started and not completed, and codex is still there."""
        return self.thread_id is not None and bool(self.turn_id) and \
            self.turn_id not in self.completed and self.child is not None and \
            self.child.returncode is None

    async def interrupt_turn(self) -> None:
        """``turn/interrupt`` from another terminal: codex ends the turn (status
        interrupted) and ``run`` returns; the thread can be followed up."""
        if not self.running():
            raise AuraError("codex has no running turn to interrupt")
        await self.channel.request("turn/interrupt", {"threadId": self.thread_id,
                                                      "turnId": self.turn_id})

    async def _interrupt(self) -> None:
        """Ctrl-C: interrupt the turn, wait a little for codex to end it, then stop."""
        try:
            if self.thread_id and self.turn_id and self.turn_id not in self.completed and \
                    self.child is not None and self.child.returncode is None:
                with contextlib.suppress(RpcError, ConnectionLost, AgentExited, TimeoutError):
                    await asyncio.wait_for(self._interrupted(), INTERRUPT_GRACE)
            if self.turn_id in self.completed:
                for native_id in list(self.pending):
                    self.withdraw(native_id)
                self.output.emit(self.items.turn_completed(self.completed[self.turn_id]))
        finally:
            for ask in self.pending.values():
                ask.cancel()
            await self.close(STOP_GRACE)

    async def _interrupted(self) -> None:
        await self.channel.request("turn/interrupt", {"threadId": self.thread_id,
                                                      "turnId": self.turn_id})
        while self.turn_id not in self.completed:
            self.turn_done.clear()
            await self._wait(self.turn_done.wait())

    async def close(self, grace: float) -> int | None:
        """Close stdin and run the process ladder; codex's exit code."""
        code = None
        if self.child is not None:
            code = await self.child.stop(grace=grace)
            if self._exit is not None:
                with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                    await asyncio.wait_for(self._exit, 2.0)
        self.channel.close("closed by aura")
        await self.channel.aclose()
        return code
