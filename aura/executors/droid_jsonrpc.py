"""droid's own JSON-RPC mode: ``droid exec --input-format stream-jsonrpc --output-format
stream-jsonrpc``, chosen with ``[executors.droid] protocol = "stream-jsonrpc"`` when a
person answers approvals (the default for that is droid's ACP mode).

Every message both ways is ``{"jsonrpc": "2.0", "factoryApiVersion": "1.0.0", "type":
"request"|"response"|"notification", "id": "<string>", …}``. One aura run is one turn:

    → droid.initialize_session {machineId, cwd, modelId, autonomyLevel: "off", interactionMode}
    → droid.add_user_message {text, messageId}
    ← droid.session_notification {notification: {type: …}} until agent_turn_completed

Notifications kept: ``create_message`` (assistant text and tool uses), ``tool_result``,
``agent_turn_completed`` (usage; the turn's end); the working-state, delta, settings and
token-counter notifications carry nothing the record lacks.

Approvals: ``droid.request_permission`` batches tool uses; aura asks **one** request for the
whole batch (its title names every tool use; one answer covers them all, as droid takes one
``selectedOption``). Options ``proceed_once`` / ``proceed_always`` (raises the autonomy
level: beyond the session) / ``cancel``. A ``permission_resolved`` for a request still
being asked (droid resolved it itself, e.g. on interrupt) withdraws it. Interrupt:
``droid.interrupt_session {}``. Resume is not offered in this mode: a follow-up starts a
fresh droid session seeded with the transcript.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from typing import Any, cast

from aura.approvals import (
    ApprovalKind,
    ApprovalOption,
    ApprovalRequest,
    Choice,
    Decision,
    classify,
    pick,
)
from aura.contracts import Entry, EntryKind, Usage
from aura.executors.base import Approver, Output, RunRequest, stderr_entries, transcript_prompt
from aura.executors.streamjson import tool_action, tool_target
from aura.process import Child

ARGS = ("exec", "--input-format", "stream-jsonrpc", "--output-format", "stream-jsonrpc")
ENVELOPE = {"jsonrpc": "2.0", "factoryApiVersion": "1.0.0"}
_VALUE_KINDS = {"proceed_once": "allow_once", "cancel": "reject_once"}


def permission_request(request_id: str, params: dict[str, Any], cwd: str) -> ApprovalRequest:
    """One ``ApprovalRequest`` for a (possibly batched) ``droid.request_permission``."""
    uses = [u for u in params.get("toolUses") or () if isinstance(u, dict)]
    titles, commands, paths, inputs = [], [], [], []
    for use in uses:
        raw = use.get("toolUse")
        tool: dict[str, Any] = raw if isinstance(raw, dict) else {}
        name, args = str(tool.get("name") or "tool"), tool.get("input")
        args = args if isinstance(args, dict) else {}
        inputs.append({"tool": name, "input": args})
        if isinstance(args.get("command"), str):
            commands.append(args["command"])
            titles.append(f"Run `{args['command']}`")
        elif isinstance(args.get("file_path"), str):
            paths.append(args["file_path"])
            titles.append(f"{name} {args['file_path']}")
        else:
            titles.append(name)
    kind = ApprovalKind.COMMAND if commands and not paths else \
        ApprovalKind.FILE_CHANGE if paths and not commands else ApprovalKind.TOOL
    detail: dict[str, Any] = {"cwd": cwd, "tool_uses": inputs}
    if commands:
        detail["command"] = " && ".join(commands) if len(commands) > 1 else commands[0]
    if paths:
        detail["paths"] = paths
    options = []
    for option in params.get("options") or ():
        if isinstance(option, dict) and isinstance(option.get("value"), str):
            value, label = option["value"], str(option.get("label") or option["value"])
            hint = _VALUE_KINDS.get(value, "allow_always" if value.startswith("proceed_")
                                    else None)
            options.append(ApprovalOption(value, label, classify(hint, label)))
    return ApprovalRequest(request_id, kind, "; ".join(titles)[:500] or "droid tool use",
                           detail, tuple(options))


def selected(ask: ApprovalRequest, decision: Decision) -> str:
    """The ``selectedOption`` for ``decision``: the offered option that carries it out
    (allowed once when droid offers nothing for the session only), else ``cancel``."""
    offered = {option.id: option for option in ask.options}
    option = offered.get(decision.option.id) if decision.option is not None else None
    option = option or pick(ask.options, decision.choice)
    if option is None and decision.choice is Choice.ALLOW_SESSION:
        option = pick(ask.options, Choice.ALLOW)
    return option.id if option is not None else "cancel"


class JsonRpcTurn:
    """One droid process in stream-jsonrpc mode, for one turn."""

    def __init__(self, request: RunRequest, output: Output, approver: Approver) -> None:
        self.request, self.output, self.approver = request, output, approver
        self.child: Child | None = None
        self.done = asyncio.Event()
        self.reason: str | None = None
        self.session_id: str | None = None
        self.asking: dict[str, asyncio.Task[Decision]] = {}
        self._waiting: dict[str, asyncio.Future[Any]] = {}
        self._writes: set[asyncio.Task[None]] = set()
        self._tools: dict[str, Entry] = {}

    def running(self) -> bool:
        """The prompt was sent, droid has not ended the turn and is still there."""
        return self.session_id is not None and not self.done.is_set() and \
            self.child is not None and self.child.returncode is None

    def send(self, message: dict[str, Any]) -> None:
        if self.child is not None:
            data = json.dumps({**ENVELOPE, **message}).encode() + b"\n"
            task = asyncio.create_task(self.child.write(data))
            self._writes.add(task)
            task.add_done_callback(self._writes.discard)

    def call(self, method: str, params: dict[str, Any]) -> asyncio.Future[Any]:
        request_id = str(uuid.uuid4())
        waiter: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = waiter
        self.send({"type": "request", "id": request_id, "method": method, "params": params})
        return waiter

    def on_lines(self, stream: str, lines: list[str]) -> None:
        if stream != "stdout":
            self.output.emit(stderr_entries(lines))
            return
        entries: list[Entry] = []
        for line in lines:
            try:
                msg = json.loads(line)
            except ValueError:
                msg = None
            if not isinstance(msg, dict):
                if line.strip():
                    entries.append({"kind": EntryKind.RAW.value, "stream": "stdout",
                                    "text": line})
                continue
            entries.extend(self._message(msg))
        if entries:
            self.output.emit(entries)

    def _message(self, msg: dict[str, Any]) -> list[Entry]:
        kind, params = msg.get("type"), msg.get("params")
        if kind == "response":
            waiter = self._waiting.pop(str(msg.get("id")), None)
            if waiter is not None and not waiter.done():
                waiter.set_result(msg.get("result") if "error" not in msg else
                                  {"error": msg["error"]})
            return []
        if kind == "request" and msg.get("method") == "droid.request_permission" and \
                isinstance(params, dict):
            self._ask(str(msg.get("id")), params)
            return []
        if kind == "request":
            self.send({"type": "response", "id": msg.get("id"), "error": {
                "code": -32601, "message": f"aura does not implement {msg.get('method')}"}})
            return []
        note = params.get("notification") if isinstance(params, dict) else None
        return self._notification(note) if isinstance(note, dict) else []

    def _notification(self, note: dict[str, Any]) -> list[Entry]:
        kind = note.get("type")
        if kind == "create_message":
            return self._created(note.get("message"))
        if kind == "tool_result":
            call_id = str(note.get("toolUseId") or "")
            start = self._tools.pop(call_id, None) or {
                "kind": "tool_call", "id": call_id, "tool": "unknown", "action": "other",
                "target": ""}
            content = note.get("content")
            return [{**start, "status": "error" if note.get("isError") else "ok",
                     "output": content if isinstance(content, str) else json.dumps(content)}]
        if kind == "permission_resolved":
            task = self.asking.pop(str(note.get("requestId")), None)
            if task is not None:
                self.approver.withdraw(str(note.get("requestId")))
                task.cancel()
        if kind == "agent_turn_completed":
            self.reason = str(note.get("reason") or "completed")
            self.done.set()
            usage = note.get("tokenUsage")
            if isinstance(usage, dict):
                return [{"kind": "usage", "usage": cast(Usage, {
                    "input_tokens": int(usage.get("inputTokens") or 0),
                    "output_tokens": int(usage.get("outputTokens") or 0),
                    "cached_input_tokens": int(usage.get("cacheReadTokens") or 0)})}]
        return []

    def _created(self, message: Any) -> list[Entry]:
        if not isinstance(message, dict) or message.get("role") != "assistant":
            return []
        out: list[Entry] = []
        for block in message.get("content") or ():
            if not isinstance(block, dict):
                continue
            if block.get("type") == "text" and block.get("text"):
                out.append({"kind": "assistant_message", "text": str(block["text"])})
            elif block.get("type") == "tool_use":
                name, args = str(block.get("name") or ""), block.get("input")
                action = tool_action(name)
                entry: Entry = {"kind": "tool_call", "id": str(block.get("id") or ""),
                                "tool": name, "action": action.value, "status": "running",
                                "target": tool_target(name, action, args, self.request.cwd)}
                self._tools[entry["id"]] = entry
                out.append(entry)
        return out

    def _ask(self, request_id: str, params: dict[str, Any]) -> None:
        ask = permission_request(request_id, params, self.request.cwd)
        task = asyncio.create_task(self.approver.ask(ask))
        self.asking[request_id] = task

        def answered(done: asyncio.Task[Decision]) -> None:
            self.asking.pop(request_id, None)
            if done.cancelled() or done.exception() is not None:
                value = "cancel"  # the turn goes on without the tool
            else:
                value = selected(ask, done.result())
            if not done.cancelled():
                self.send({"type": "response", "id": request_id,
                           "result": {"selectedOption": value}})

        task.add_done_callback(answered)

    async def run(self, argv: list[str], env: dict[str, str]) -> tuple[int, str | None]:
        self.child = child = await Child.spawn(
            argv, on_lines=self.on_lines, cwd=self.request.cwd, env=env,
            keep_stdin_open=True, line_cap=self.request.line_cap)
        exited = asyncio.create_task(child.wait())
        try:
            init = self.call("droid.initialize_session", {
                "machineId": "aura", "cwd": self.request.cwd,
                "modelId": self.request.model or "", "autonomyLevel": "off",
                "interactionMode": "auto"})
            waiting: set[asyncio.Future[Any]] = {init, exited}
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            result = init.result() if init.done() else None
            if not isinstance(result, dict) or not result.get("sessionId"):
                return (exited.result() if exited.done() else 1) or 1, \
                    f"droid did not start a session: {result!r}"
            self.session_id = str(result["sessionId"])
            self.output.set_native_session_id(self.session_id)
            prompt = transcript_prompt(self.request.history, self.request.prompt) \
                if self.request.history else self.request.prompt
            self.call("droid.add_user_message", {"text": prompt,
                                                 "messageId": str(uuid.uuid4())})
            ended = asyncio.create_task(self.done.wait())
            await asyncio.wait({ended, exited}, return_when=asyncio.FIRST_COMPLETED)
            ended.cancel()
            if not self.done.is_set():
                return (exited.result() or 1), "droid exited before the turn ended"
            return 0, None if self.reason == "completed" else f"droid: {self.reason}"
        except asyncio.CancelledError:
            if child.returncode is None:
                self.call("droid.interrupt_session", {})
                with contextlib.suppress(TimeoutError):
                    await asyncio.shield(asyncio.wait_for(self.done.wait(), 3.0))
            raise
        finally:
            for task in list(self.asking.values()):
                task.cancel()
            await asyncio.shield(child.stop(grace=1.0))
            exited.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await exited
