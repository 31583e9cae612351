"""The Agent Client Protocol client shared by gemini, qwen-code (and any ACP agent).

ACP is JSON-RPC 2.0 over the agent's stdin/stdout, one JSON object per line. One aura run
is one turn in one agent process:

    initialize {protocolVersion: 1, clientCapabilities}      (no fs, no terminal: see below)
    session/load {sessionId, cwd, mcpServers: []}            resuming, if the agent loads
      or session/new {cwd, mcpServers: []}                   → sessionId = the native id
    session/prompt {sessionId, prompt: [{type: text, text}]} → {stopReason}
    close stdin, then the process ladder (Child.stop)

While the prompt runs the agent streams ``session/update`` notifications (translated to
entries by ``aura.executors.acp.entries.UpdateTranslator``) and may ask the client things:
``session/request_permission`` is answered from the approval flags where they allow it
(--yolo: the allow option); otherwise, with an approver on the request, a person (or a
policy) is asked through it (see aura.executors.acp.approval for the mapping), and without
one the reject option is chosen, with a ``system`` entry saying how to allow it; any
other request (fs/*, terminal/*, …) gets a JSON-RPC "method not found" error, because aura
advertises no client capabilities. Advertising fs would oblige aura to implement it
exactly: gemini fails to create new files when a client advertises fs/write_text_file and
answers a read of a missing file with an error. One exception: opencode 1.18 sends
``fs/write_text_file`` for a write the person has just allowed although aura offers no fs
(it writes the file itself whatever the answer, and prints a stack trace on an error):
aura writes exactly that file, inside the agent's directory, with the content asked, and
answers success; a write of any other path still gets the error.

Resuming: with a stored native id and an agent that advertises ``loadSession``, aura sends
``session/load``; the agent replays the old conversation as updates, which aura already has
and does not record again. If the agent cannot load (gemini 0.61 answers "No previous
sessions found for this project"), aura starts a new agent session seeded with a compact
transcript of the stored history and says so in a ``system`` entry.

Ctrl-C (the task cancelled): ``session/cancel``, then every permission request still
waiting for a person is answered ``cancelled`` (as ACP asks), a short wait for the prompt
to return ``cancelled``, then close stdin and the process ladder.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
from collections.abc import Callable
from functools import partial
from typing import Any, ClassVar

from aura import __version__
from aura.approvals import Decision
from aura.contracts import Entry, EntryKind
from aura.errors import AcpError, AgentExited, UsageError
from aura.executors.acp import approval
from aura.executors.acp.entries import UpdateTranslator
from aura.executors.base import (
    Approvals,
    Executor,
    Outcome,
    Output,
    RunRequest,
    stderr_entries,
    transcript_prompt,
)
from aura.process import Child
from aura.rpc import INTERNAL_ERROR, METHOD_NOT_FOUND, ConnectionLost, LineChannel, RpcError

PROTOCOL_VERSION = 1
CLIENT_CAPABILITIES: dict[str, Any] = {
    "fs": {"readTextFile": False, "writeTextFile": False}, "terminal": False}
DEFAULT_STARTUP_TIMEOUT = 300.0  # seconds for initialize (see startup_timeout)
AUTH_REQUIRED = -32000  # ACP's "authentication required"
# What a read-only run (the review) may be allowed: ACP's tool kinds that change nothing.
READ_ONLY_KINDS = frozenset({"read", "search", "think", "fetch"})
_AUTH_WORDS = ("auth", "api key", "log in", "login", "credential")
_ERROR_WORDS = re.compile(r"error|fatal|exception|not found|denied|invalid|unknown|missing",
                          re.IGNORECASE)
# stopReason values that end a turn normally (ACP: end_turn, max_tokens,
# max_turn_requests, refusal, cancelled).
STOP_OK = {"end_turn", "max_tokens", "max_turn_requests"}


class Connection(LineChannel):
    """The stdio transport of aura.rpc with ACP's errors: an error answer is an
    ``AcpError`` naming the request's method, a vanished agent ``AgentExited``. The
    agent's own requests go to ``on_request`` (whose return value is the result, or an
    ``AcpError`` raised for an error answer), its notifications to ``on_notification``,
    lines that are no JSON-RPC message to ``on_junk``."""

    def __init__(self, on_request: Callable[[str, Any], Any],
                 on_notification: Callable[[str, Any], None],
                 on_junk: Callable[[str], None]) -> None:
        super().__init__(lambda method: partial(self._answer_agent, method),
                         lambda method: partial(on_notification, method), on_junk)
        self._on_request = on_request

    async def request(self, method: str, params: Any) -> Any:
        try:
            return await super().request(method, params)
        except RpcError as exc:
            raise AcpError(method, exc.message, exc.code, exc.data) from None
        except ConnectionLost as exc:
            raise AgentExited(method, str(exc)) from None

    def _answer_agent(self, method: str, params: Any) -> Any:
        try:
            return self._on_request(method, params)
        except AcpError as exc:
            code = exc.code if exc.code is not None else INTERNAL_ERROR
            raise RpcError(code, str(exc)) from None


def write_allowed(params: Any, cwd: str, allowed: set[str]) -> bool:
    """Carry out an ``fs/write_text_file`` of a file a person allowed the agent to write in
    this turn (inside ``cwd``); False (the request gets an error) for anything else."""
    if not isinstance(params, dict) or not cwd or not allowed:
        return False
    path, content = params.get("path"), params.get("content")
    if not isinstance(path, str) or not isinstance(content, str) or not os.path.isabs(path):
        return False
    root, real = os.path.realpath(cwd), os.path.realpath(path)
    if real not in allowed or os.path.commonpath([root, real]) != root:
        return False
    try:
        with open(real, "w", encoding="utf-8", newline="") as handle:
            handle.write(content)
    except OSError:
        return False
    return True


def startup_timeout(request: RunRequest, name: str) -> float:
    """Seconds to wait for the answer to initialize: long enough for a first
    ``npx -y`` download, short enough that a program that is no ACP agent does not hang
    the run. ``[executors.NAME] startup_timeout`` in the config changes it."""
    value = request.settings.get("startup_timeout", DEFAULT_STARTUP_TIMEOUT)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise UsageError(f"[executors.{name}] startup_timeout "
                         f"must be a positive number of seconds, not {value!r}")
    return float(value)


def _pick(options: list[Any], kinds: tuple[str, ...]) -> str | None:
    """The optionId of the first option whose kind comes first in ``kinds``."""
    for kind in kinds:
        for option in options:
            if isinstance(option, dict) and option.get("kind") == kind and \
                    option.get("optionId") is not None:
                return str(option["optionId"])
    return None


class _Turn:
    """One ACP run: the process, the connection, the translator and their state."""

    def __init__(self, executor: AcpExecutor, request: RunRequest, output: Output) -> None:
        self.executor = executor
        self.request = request
        self.output = output
        self.translator = UpdateTranslator(request.cwd, request.prompt)
        self.loading = False  # session/load in flight: updates are the old conversation
        self.replayed = 0
        self.stderr_tail: list[str] = []
        self.session_id: str | None = None
        self.conn = Connection(self._on_request, self._on_notification, self._on_junk)
        self.child: Child | None = None
        self._watch: asyncio.Task[int] | None = None
        self._batch: list[Entry] | None = None
        self.asking: set[asyncio.Task[Decision]] = set()  # the approver's pending answers
        self._asked = 0
        self.allowed_writes: set[str] = set()  # real paths of edits a person allowed
        self.new_session: dict[str, Any] = {}  # the session/new result (models, options)

    def emit(self, entries: list[Entry]) -> None:
        if self._batch is not None:
            self._batch.extend(entries)
        elif entries:
            self.output.emit(entries)

    # -- what the agent sends ---------------------------------------------------------

    def on_lines(self, stream: str, lines: list[str]) -> None:
        if stream == "stdout":
            # Entries from one chunk of lines go to the recorder in one batch.
            self._batch = []
            try:
                for line in lines:
                    self.conn.feed(line)
            finally:
                batch, self._batch = self._batch, None
                if batch:
                    self.output.emit(batch)
        else:
            self.stderr_tail = (self.stderr_tail + lines)[-20:]
            self.output.emit(stderr_entries(lines))

    def _on_notification(self, method: str, params: Any) -> None:
        if method == "session/update":
            if self.loading:
                self.replayed += 1
                return
            entries = self.translator.feed(params)
            if entries:
                self.emit(entries)
        else:
            self.emit([{"kind": EntryKind.RAW.value, "text": json.dumps(
                {"method": method, "params": params}, ensure_ascii=False)}])

    def _on_junk(self, line: str) -> None:
        self.emit([{"kind": EntryKind.RAW.value, "stream": "stdout", "text": line}])

    def _on_request(self, method: str, params: Any) -> Any:
        if method == "session/request_permission" and isinstance(params, dict):
            return self._permission(params)
        if method == "fs/write_text_file" and write_allowed(params, self.request.cwd,
                                                           self.allowed_writes):
            return None
        self.emit([{"kind": EntryKind.SYSTEM.value,
                    "text": f"agent asked for {method}, which aura does not offer "
                            "(answered with an error)"}])
        raise AcpError(method, f"aura does not implement {method}", METHOD_NOT_FOUND)

    def _permission(self, params: dict[str, Any]) -> Any:
        raw_options, raw_call = params.get("options"), params.get("toolCall")
        options: list[Any] = raw_options if isinstance(raw_options, list) else []
        call: dict[str, Any] = raw_call if isinstance(raw_call, dict) else {}
        kind = str(call.get("kind") or "other")
        self.translator.note_permission(call)  # the call's name and target, for later
        allowed = kind in READ_ONLY_KINDS if self.request.read_only else \
            self.executor.approves(self.request.approvals, kind)
        if allowed:
            choice = _pick(options, ("allow_once", "allow_always"))
            if choice is not None:
                return {"outcome": {"outcome": "selected", "optionId": choice}}
        if self.request.approver is not None and not self.request.read_only:
            return self._ask(params, call)  # a read-only review asks nobody: it is refused
        what = str(call.get("title") or kind)
        hint = "the review is read-only" if self.request.read_only else \
            self.executor.allow_hint(kind)
        self.emit([*self.translator.flush_text(), {
            "kind": EntryKind.SYSTEM.value,
            "text": f"refused the agent's request: {what} ({kind}); {hint}",
            "data": {"toolCallId": call.get("toolCallId"), "kind": kind}},
            *self.translator.refused(call, f"permission refused by aura; {hint}")])
        choice = _pick(options, ("reject_once", "reject_always"))
        if choice is None:
            return {"outcome": {"outcome": "cancelled"}}
        return {"outcome": {"outcome": "selected", "optionId": choice}}

    async def _ask(self, params: dict[str, Any], call: dict[str, Any]) -> dict[str, Any]:
        """Ask the approver and answer with the option it chose; ``cancelled`` when the
        turn is cancelled meanwhile (cancel() cancels the asking task)."""
        assert self.request.approver is not None
        self._asked += 1
        ask = approval.to_request(params, self.request.cwd, f"permission-{self._asked}")
        if not self.executor.session_option_works(self.request, str(call.get("kind") or "")):
            ask = approval.without_session_option(ask)
        task = asyncio.create_task(self.request.approver.ask(ask))
        self.asking.add(task)
        try:
            await asyncio.wait({task})
        finally:
            if not task.done():  # the connection went away: stop asking
                task.cancel()
            self.asking.discard(task)
        if task.cancelled():
            return approval.CANCELLED
        decision = task.result()
        option, note = approval.chosen(ask, decision)
        if option is not None and decision.allowed and call.get("kind") == "edit":
            self.allowed_writes.update(os.path.realpath(path) for path in
                                       ask.detail.get("paths", ()) if os.path.isabs(path))
        entries = self.translator.flush_text()
        if note:
            entries.append({"kind": EntryKind.SYSTEM.value, "text": note})
        if option is None or not decision.allowed:
            why = decision.message or "denied"
            entries += self.translator.refused(
                call, f"{why} ({decision.by})" if decision.by else why)
        self.emit(entries)
        return approval.outcome(option)

    def cancel_asking(self) -> None:
        """The turn is cancelled: every pending permission is answered ``cancelled``."""
        for task in list(self.asking):
            task.cancel()

    # -- the conversation -------------------------------------------------------------

    async def start(self, argv: list[str], env: dict[str, str]) -> dict[str, Any]:
        """Spawn the agent and initialize; returns the agent's capabilities."""
        self.child = await Child.spawn(argv, on_lines=self.on_lines, cwd=self.request.cwd,
                                       env=env, keep_stdin_open=True,
                                       line_cap=self.request.line_cap)
        self.conn.attach(self.child.write)
        self._watch = asyncio.create_task(self._watch_exit(self.child))
        timeout = startup_timeout(self.request, self.executor.name)
        try:
            init = await asyncio.wait_for(self.conn.request("initialize", {
                "protocolVersion": PROTOCOL_VERSION,
                "clientCapabilities": CLIENT_CAPABILITIES,
                "clientInfo": {"name": "aura", "version": __version__}}), timeout)
        except TimeoutError:
            raise AcpError("initialize", f"no answer within {timeout:g} s (is this an ACP "
                           f"agent? raise [executors.{self.executor.name}] startup_timeout "
                           "if it is just slow to start)") from None
        return init if isinstance(init, dict) else {}

    async def _watch_exit(self, child: Child) -> int:
        code = await child.wait()
        self.conn.close(f"agent exited with code {code}{self._stderr_hint()}")
        return code

    def _stderr_hint(self) -> str:
        # The last line that reads like an error (npx ends with "npm notice" chatter).
        tail = [line.strip() for line in self.stderr_tail if line.strip()]
        errors = [line for line in tail if _ERROR_WORDS.search(line)]
        said = (errors or tail)[-1:]
        return f" ({said[0][:200]})" if said else ""

    async def open_session(self, init: dict[str, Any]) -> str:
        """session/load the stored native id where possible, else session/new (seeding
        the prompt with a transcript when a resume was wanted). Returns the prompt."""
        request = self.request
        name = self.executor.name
        caps = init.get("agentCapabilities") if isinstance(init, dict) else None
        can_load = isinstance(caps, dict) and bool(caps.get("loadSession"))
        native = request.native_session_id
        reason = ""
        if native and can_load:
            self.loading = True
            try:
                await self.conn.request("session/load", {
                    "sessionId": native, "cwd": request.cwd, "mcpServers": []})
            except AgentExited:
                raise
            except AcpError as exc:
                reason = str(exc)
            else:
                self.session_id = native
                self.output.set_native_session_id(native)
                self.output.emit([{"kind": EntryKind.SYSTEM.value,
                                   "text": f"resumed {name} session {native} (session/load; "
                                           f"{self.replayed} replayed updates not recorded "
                                           "again)"}])
                return request.prompt
            finally:
                self.loading = False
        elif native:
            reason = "the agent does not offer session/load"
        result = await self.conn.request("session/new", {"cwd": request.cwd,
                                                          "mcpServers": []})
        session_id = result.get("sessionId") if isinstance(result, dict) else None
        if not isinstance(session_id, str) or not session_id:
            raise AcpError("session/new", f"no sessionId in the answer: {result!r}")
        self.session_id = session_id
        self.new_session = result
        self.output.set_native_session_id(session_id)
        if not native and not request.history:
            return request.prompt
        why = f"could not resume {name} session {native} ({reason})" if native else \
            f"no {name} session id was stored for this session"
        self.output.emit([{"kind": EntryKind.SYSTEM.value,
                           "text": f"{why}; started {name} session {session_id} seeded with "
                                   "a transcript of this session's history"}])
        return transcript_prompt(request.history, request.prompt)

    async def prompt(self, text: str) -> dict[str, Any]:
        result = await self.conn.request("session/prompt", {
            "sessionId": self.session_id, "prompt": [{"type": "text", "text": text}]})
        return result if isinstance(result, dict) else {}

    async def cancel(self, prompt_task: asyncio.Task[Any] | None, grace: float) -> None:
        """Ask the agent to stop the turn and wait a little for it to say it did."""
        if self.session_id is None or self.child is None or prompt_task is None:
            return
        self.conn.notify("session/cancel", {"sessionId": self.session_id})
        self.cancel_asking()
        await self.conn.flush()
        with contextlib.suppress(Exception, asyncio.CancelledError):
            result = await asyncio.wait_for(asyncio.shield(prompt_task), grace)
            self.output.emit(self.translator.finish(result, interrupted=True))
            return
        self.output.emit(self.translator.finish(None, interrupted=True))

    async def close(self, grace: float) -> int | None:
        """Close stdin and run the process ladder; the agent's exit code."""
        code = None
        if self.child is not None:
            code = await self.child.stop(grace=grace)
            if self._watch is not None:
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await asyncio.wait_for(self._watch, 2.0)
        self.conn.close("closed by aura")
        await self.conn.aclose()
        return code


class AcpExecutor(Executor):
    """An agent driven over ACP. Subclasses set ``program``/``npx_package`` and map
    flags in ``agent_args``."""

    acp_args: ClassVar[tuple[str, ...]] = ("--acp",)
    # Spelling of older releases, tried once when the agent rejects ``acp_args``.
    legacy_acp_args: ClassVar[tuple[str, ...] | None] = None
    stop_grace: ClassVar[float] = 2.0
    cancel_grace: ClassVar[float] = 3.0
    login_hint: ClassVar[str] = "log in with the agent once, or set the API key it expects"
    features: ClassVar[frozenset[str]] = frozenset(
        {"resume", "models", "--yolo", "approvals", "interrupt"})
    # The turn whose prompt runs now, for `aura session interrupt` (ACP has no steer).
    _live: tuple[_Turn, asyncio.Task[Any]] | None = None

    read_only_mode = "permission requests for anything but reading are refused"

    def agent_args(self, request: RunRequest) -> list[str]:
        """Model and approval flags for the agent's command line."""
        args: list[str] = []
        if request.model:
            args += ["-m", request.model]
        if request.approvals.yolo:
            args.append("--yolo")
        return args

    def approves(self, approvals: Approvals, kind: str) -> bool:
        """Whether to allow a ``session/request_permission`` for a tool of ``kind``."""
        return approvals.yolo

    def allow_hint(self, kind: str) -> str:
        return "rerun with --yolo to allow it"

    def session_option_works(self, request: RunRequest, kind: str) -> bool:
        """Whether the agent's own "allow for this session" option works for a tool of
        ``kind`` in this run (else aura allows once and remembers the answer itself)."""
        return True

    def acp_env(self, request: RunRequest) -> dict[str, str]:
        """The agent's environment (agents configured through it override this)."""
        return request.child_env()

    async def configure_session(self, turn: _Turn) -> None:
        """Settle the new or loaded session before the prompt (droid picks its model
        with session/set_config_option)."""

    def command(self, request: RunRequest, acp_args: tuple[str, ...]) -> list[str]:
        return (self.base_argv(request) + list(acp_args) + self.agent_args(request) +
                list(request.params))

    async def run(self, request: RunRequest, output: Output) -> Outcome:
        env = self.acp_env(request)
        acp_args = self.acp_args
        while True:
            turn = _Turn(self, request, output)
            try:
                init = await turn.start(self.command(request, acp_args), env)
            except asyncio.CancelledError:
                await asyncio.shield(turn.close(self.stop_grace))
                raise
            except AgentExited as exc:
                code = await turn.close(0.1)
                if acp_args != self.legacy_acp_args and self._rejected_flag(turn):
                    # An older release that only knows the legacy spelling: try it once.
                    output.emit([{"kind": EntryKind.SYSTEM.value,
                                  "text": f"{self.name} does not know "
                                          f"{' '.join(acp_args)}; retrying with "
                                          f"{' '.join(self.legacy_acp_args or ())}"}])
                    acp_args = self.legacy_acp_args or ()
                    continue
                return Outcome(code if code else 1, None, f"{self.name}: {exc}")
            except AcpError as exc:
                await turn.close(self.stop_grace)
                return Outcome(1, None, f"{self.name}: {exc}{self._auth_hint(exc)}")
            except BaseException:
                await asyncio.shield(turn.close(0.1))
                raise
            return await self._converse(turn, init)

    def _rejected_flag(self, turn: _Turn) -> bool:
        if not self.legacy_acp_args:
            return False
        said = " ".join(turn.stderr_tail).lower()
        return "unknown argument" in said or "unknown option" in said

    async def _converse(self, turn: _Turn, init: dict[str, Any]) -> Outcome:
        prompt_task: asyncio.Task[dict[str, Any]] | None = None
        try:
            prompt = await turn.open_session(init)
            await self.configure_session(turn)
            prompt_task = asyncio.create_task(turn.prompt(prompt))
            self._live = (turn, prompt_task)
            try:
                result = await asyncio.shield(prompt_task)
            finally:
                self._live = None
        except asyncio.CancelledError:
            await asyncio.shield(self._interrupt(turn, prompt_task))
            raise
        except AgentExited as exc:
            code = await turn.close(0.1)
            turn.output.emit(turn.translator.finish(None, interrupted=False))
            return Outcome(code if code else 1, turn.session_id, str(exc))
        except AcpError as exc:
            await turn.close(self.stop_grace)
            return Outcome(1, turn.session_id, f"{self.name}: {exc}{self._auth_hint(exc)}")
        except BaseException:
            await asyncio.shield(turn.close(0.1))
            raise
        turn.output.emit(turn.translator.finish(result))
        await turn.close(self.stop_grace)
        stop = result.get("stopReason")
        if stop in STOP_OK:
            if stop != "end_turn":
                turn.output.emit([{"kind": EntryKind.SYSTEM.value,
                                   "text": f"the agent stopped the turn: {stop}"}])
            return Outcome(0, turn.session_id)
        return Outcome(0, turn.session_id, f"{self.name} ended the turn: {stop}")

    def live_controls(self) -> frozenset[str]:
        live = self._live
        if live is None or live[1].done() or live[0].child is None or \
                live[0].child.returncode is not None:
            return frozenset()
        return frozenset({"interrupt"})

    async def interrupt_turn(self) -> None:
        """``session/cancel`` from another terminal: the prompt answers ``cancelled``
        and ``run`` returns; the agent session takes new prompts."""
        live = self._live
        if live is None or live[1].done():
            await super().interrupt_turn()
            return
        turn = live[0]
        turn.conn.notify("session/cancel", {"sessionId": turn.session_id})
        turn.cancel_asking()
        await turn.conn.flush()

    async def _interrupt(self, turn: _Turn, prompt_task: asyncio.Task[Any] | None) -> None:
        try:
            await turn.cancel(prompt_task, self.cancel_grace)
        finally:
            if prompt_task is not None and not prompt_task.done():
                prompt_task.cancel()
            await turn.close(self.stop_grace)

    def _auth_hint(self, exc: AcpError) -> str:
        said = str(exc).lower()
        if exc.code == AUTH_REQUIRED or any(word in said for word in _AUTH_WORDS):
            return f"; {self.login_hint}"
        return ""

    def validate(self, request: RunRequest) -> None:
        super().validate(request)
        approvals = request.approvals
        if approvals.yolo and approvals.auto_approve is False:
            raise UsageError("--yolo and --auto-approve false contradict each other")
        startup_timeout(request, self.name)
