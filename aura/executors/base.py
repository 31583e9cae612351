"""The executor interface.

An executor runs one agent turn: ``run(request, output)`` delivers the prompt, streams the
agent's events into ``output`` as normalized entries, and returns an ``Outcome``. It is
cancelled (asyncio) when the user interrupts, and must stop its process before re-raising.

Most agents are a command whose stdout is one event per line; they subclass
``CommandExecutor`` and write only ``build_command`` (argv, env, stdin) and a ``LineParser``.
Agents that talk back and forth (ACP over stdio, HTTP endpoints) override ``run``.

Resuming: ``request.native_session_id`` is the agent's own session to continue. A
``CommandExecutor`` whose agent has no stored native id on a follow-up (or whose resume
fails: a quick non-zero exit that produced nothing and complained about the session) runs a
fresh agent session seeded with ``transcript_prompt(history, prompt)`` and says so in a
``system`` entry; its ``build_command`` only ever sees a request it can honour.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from aura.approvals import ApprovalRequest, Decision
from aura.contracts import Entry, EntryKind
from aura.errors import ExecutorNotFound, UsageError
from aura.process import DEFAULT_LINE_CAP, Child, resolve_program


@dataclass(frozen=True, slots=True)
class Approvals:
    """The approval flags as the user gave them (None: not given)."""

    yolo: bool = False
    force: bool = False
    trust: bool = False
    auto_approve: bool | None = None
    allow_all_tools: bool = False
    allow_tools: tuple[str, ...] = ()
    deny_tools: tuple[str, ...] = ()

    def given(self) -> list[str]:
        """The flags the user set, spelled as on the command line."""
        names = []
        if self.yolo:
            names.append("--yolo")
        if self.force:
            names.append("--force")
        if self.trust:
            names.append("--trust")
        if self.auto_approve is not None:
            names.append("--auto-approve")
        if self.allow_all_tools:
            names.append("--allow-all-tools")
        if self.allow_tools:
            names.append("--allow-tool")
        if self.deny_tools:
            names.append("--deny-tool")
        return names


class Approver(Protocol):
    """Whoever answers an agent's approval requests for one turn (the broker in
    aura.service.approvals: policies first, then a person on any surface). An executor
    that speaks an approval protocol sends each request here and waits; with no approver
    it answers from the approval flags as before."""

    async def ask(self, request: ApprovalRequest) -> Decision:
        """The answer to ``request`` (a deny when nobody answers in time);
        CancelledError when the turn is cancelled meanwhile."""
        ...

    def withdraw(self, native_id: str) -> None:
        """The agent withdrew its request (claude's control_cancel_request…): mark it
        lost and stop asking."""
        ...


class Asker(Protocol):
    """A person who can be asked (a terminal picker); executors never ask on their own."""

    async def choose(self, title: str, options: list[str]) -> str:
        """One of ``options`` (the first is the default); CancelledError if refused."""
        ...

    async def endpoint(self) -> str:
        """An OpenAI-compatible endpoint URL."""
        ...


@dataclass(frozen=True, slots=True)
class RunRequest:
    """Everything an executor needs for one turn."""

    prompt: str  # with --append-prompt already applied
    cwd: str
    session_id: str
    execution_id: str
    native_session_id: str | None = None  # the agent's own session to resume, if any
    model: str | None = None
    base_command: str | None = None
    params: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)  # --var
    approvals: Approvals = field(default_factory=Approvals)
    settings: Mapping[str, Any] = field(default_factory=dict)  # [executors.NAME] config
    program: str | None = None  # --executor-path for this executor
    openai_endpoint: str | None = None
    history: tuple[Entry, ...] = ()  # earlier entries of the session (for transcripts)
    line_cap: int = DEFAULT_LINE_CAP
    asker: Asker | None = None  # someone to ask (a model, an endpoint), or nobody
    approver: Approver | None = None  # who answers approval requests; None: the flags do
    refresh_model_cache: bool = False  # discover models again (--refresh-model-cache)
    # The review: the agent may read, never write (each executor maps this to its agent's
    # own read-only mode, see Executor.read_only_mode; approvals are ignored then).
    read_only: bool = False

    @property
    def interactive(self) -> bool:
        return self.asker is not None

    def child_env(self) -> dict[str, str]:
        """The user's environment, plus --var, plus AURA_SESSION_ID."""
        env = dict(os.environ)
        env.update(self.env)
        env["AURA_SESSION_ID"] = self.session_id
        return env


@dataclass(frozen=True, slots=True)
class Invocation:
    argv: list[str]
    env: dict[str, str]
    stdin: bytes | None = None  # written then closed; None: /dev/null
    # A session id aura chose for the agent (claude --session-id): stored at once, before
    # the agent prints anything, so even a run killed early can be resumed.
    native_session_id: str | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    exit_code: int
    native_session_id: str | None = None
    error: str | None = None  # why it failed, when the exit code alone does not say


class Output(Protocol):
    """Where an executor sends what the agent produced (the recorder)."""

    def emit(self, entries: list[Entry]) -> None: ...
    def emit_json(self, items: list[tuple[Entry, str]]) -> None:
        """Entries with their exact JSON text (no envelope keys), to skip re-encoding."""
        ...
    def set_native_session_id(self, native_id: str) -> None: ...


class LineParser:
    """Turns one agent's stdout lines into entries. One instance per run: parsers keep
    state (pending tool calls, the native session id, the final result)."""

    def __init__(self) -> None:
        self.native_session_id: str | None = None
        self.error: str | None = None  # set when the agent reported a failed turn

    def feed(self, line: str) -> list[Entry]:
        raise NotImplementedError

    def feed_lines(self, lines: list[str], output: Output) -> None:
        """Parse a chunk of lines and emit them in one batch."""
        entries: list[Entry] = []
        feed = self.feed
        for line in lines:
            entries.extend(feed(line))
        if entries:
            output.emit(entries)

    def finish(self) -> list[Entry]:
        """Entries still pending when the stream ended (e.g. an unfinished tool call)."""
        return []


def stderr_entries(lines: list[str]) -> list[Entry]:
    """stderr is progress and warnings: kept as raw entries, never a failure by itself."""
    return [{"kind": EntryKind.RAW.value, "stream": "stderr", "text": line} for line in lines]


class Executor(ABC):
    """One agent (or model server) that aura can run."""

    name: ClassVar[str]
    program: ClassVar[str | None] = None  # the binary looked up on PATH
    npx_package: ClassVar[str | None] = None  # `npx -y PACKAGE` when the binary is absent
    version_args: ClassVar[tuple[str, ...]] = ("--version",)
    description: ClassVar[str] = ""
    # What it supports, for `aura executors` and for refusing meaningless flags:
    # "resume", "models", "steer" and "interrupt" (in some mode: see live_controls),
    # and the approval flags it understands ("--yolo", …).
    features: ClassVar[frozenset[str]] = frozenset()
    # How the agent is kept from writing when ``request.read_only`` (None: it cannot be;
    # aura then only detects and saves apart what it wrote).
    read_only_mode: ClassVar[str | None] = None

    _through: Executor | None = None  # the executor this one runs its turn through now

    async def run_through(self, inner: Executor, request: RunRequest, output: Output
                          ) -> Outcome:
        """Run the turn with another executor (a protocol mode of the same agent), so
        that steering and interrupts reach it."""
        self._through = inner
        try:
            return await inner.run(request, output)
        finally:
            self._through = None

    def live_controls(self) -> frozenset[str]:
        """What the turn running now takes from another terminal (`aura session steer`,
        `aura session interrupt`): "steer" (text into the running turn) and "interrupt"
        (end the turn the agent's own way, its session kept). Empty when no turn runs
        or the agent has no way to: a steer then waits for the next turn."""
        return self._through.live_controls() if self._through is not None else frozenset()

    async def steer_turn(self, text: str) -> None:
        """Send ``text`` into the running turn (only when ``live_controls`` says so)."""
        if self._through is None:
            raise UsageError(f"{self.name} cannot take text into a running turn")
        await self._through.steer_turn(text)

    async def interrupt_turn(self) -> None:
        """Ask the agent to end the running turn; ``run`` then returns as the agent
        ends it (only when ``live_controls`` says so)."""
        if self._through is None:
            raise UsageError(f"{self.name} cannot interrupt a running turn")
        await self._through.interrupt_turn()

    def validate(self, request: RunRequest) -> None:
        """Refuse flags that mean nothing for this executor (UsageError)."""
        allowed = self.features
        for flag in request.approvals.given():
            if flag not in allowed:
                raise UsageError(f"{flag} has no meaning for --executor {self.name}")
        if request.model and "models" not in allowed:
            raise UsageError(f"--model has no meaning for --executor {self.name} "
                             "(it chooses its model itself)")

    def preflight(self, request: RunRequest) -> None:
        """Checks before a local run is recorded (the agent's binary is there); raises
        ExecutorNotFound with one line saying what to do. Nothing for executors that
        spawn no program of their own."""
        if self.program is not None:
            self.base_argv(request)

    def locate(self, program: str | None = None) -> tuple[list[str], str] | None:
        """Where the agent's program is: (argv prefix, how it was found: "executor-path",
        "PATH" or "npx"), or None. ``program`` is --executor-path / config."""
        import shutil

        path = os.environ.get("PATH", os.defpath)
        if program:
            if os.sep in program:
                usable = os.path.isfile(program) and os.access(program, os.X_OK)
                return ([program], "executor-path") if usable else None
            found = shutil.which(program, path=path)
            return ([found], "executor-path") if found else None
        if self.program:
            found = shutil.which(self.program, path=path)
            if found:
                return [found], "PATH"
        if self.npx_package and shutil.which("npx", path=path):
            return ["npx", "-y", self.npx_package], "npx"
        return None

    def for_request(self, request: RunRequest) -> Executor:
        """The executor that serves this request: itself, unless one name covers two
        kinds (``custom``: a command with --base-command, an endpoint without)."""
        return self

    async def prepare(self, request: RunRequest, output: Output) -> RunRequest:
        """Settle what the turn needs before it runs (pick a model, ask for an endpoint).
        The session remembers the returned request's model and endpoint."""
        return request

    @abstractmethod
    async def run(self, request: RunRequest, output: Output) -> Outcome:
        """Run one turn; cancelled on Ctrl-C (stop the agent, then re-raise)."""

    def base_argv(self, request: RunRequest) -> list[str]:
        """The program part of the agent's argv, in order of precedence:
        --base-command (shell-quoted, e.g. ``npx -y @openai/codex@0.169.0``), then
        --executor-path / config ``[executor_paths]``, then ``program`` on PATH, then
        ``npx -y npx_package`` where the agent is published on npm."""
        import shlex

        if request.base_command is not None:
            try:
                argv = shlex.split(request.base_command)
            except ValueError as exc:
                raise UsageError(f"cannot parse --base-command: {exc}") from None
            if not argv:
                raise UsageError("--base-command is empty")
            return argv
        found = self.locate(request.program)
        if found is not None:
            argv, how = found
            # The name as given when it was found on PATH (the child resolves it again
            # with its own PATH); an explicit path stays a path.
            return [request.program] if how == "executor-path" and request.program \
                else ([self.program] if how == "PATH" and self.program else argv)
        raise ExecutorNotFound(self.not_found_message(request.program))

    def announce_npx(self, request: RunRequest, output: Output) -> None:
        """At the start of a run through ``npx``, a system entry saying so."""
        notice = self.npx_notice(request)
        if notice:
            output.emit([{"kind": EntryKind.SYSTEM.value, "text": notice}])

    def npx_notice(self, request: RunRequest) -> str | None:
        """One line when the agent runs through ``npx`` because its binary is missing:
        that first run downloads the package (and may wait on the network)."""
        if request.base_command is not None or not self.program:
            return None
        found = self.locate(request.program)
        if found is None or found[1] != "npx":
            return None
        return (f"{self.program} not found on PATH; running it through "
                f"`{' '.join(found[0])}`, which downloads the package")

    def not_found_message(self, program: str | None) -> str:
        """One line: what was looked for, where, and how to point aura at it."""
        binary = self.program or self.name
        fix = f"--executor-path {self.name}=/path/to/{binary}"
        if program:
            return (f"{self.name}: the executor path {program!r} (--executor-path or "
                    f"[executor_paths] in the config) is not an executable file; "
                    f"fix it with {fix}")
        dirs = list(dict.fromkeys(
            d for d in os.environ.get("PATH", os.defpath).split(os.pathsep) if d))
        where = os.pathsep.join(dirs) if len(dirs) <= 8 else \
            os.pathsep.join(dirs[:8]) + f" (+{len(dirs) - 8} more)"
        npx = f" and npx (for {self.npx_package}) is not installed" \
            if self.npx_package else ""
        return (f"{binary} not found on PATH ({where or 'empty'}){npx}; install it or "
                f"tell aura where it is: {fix}")


class CommandExecutor(Executor):
    """An agent run as one process whose stdout carries one event per line."""

    stop_grace: ClassVar[float] = 1.0
    # Follow-ups without a native id get a transcript-seeded fresh session (False: the
    # command gets exactly the user's prompt, e.g. the generic command executor).
    seed_transcript: ClassVar[bool] = True
    # A resume that fails sooner than this, having produced nothing, is retried fresh.
    resume_failure_window: ClassVar[float] = 60.0

    _prepared: tuple[RunRequest, Invocation] | None = None

    @abstractmethod
    def build_command(self, request: RunRequest) -> Invocation: ...

    @abstractmethod
    def parser(self, request: RunRequest) -> LineParser: ...

    def preflight(self, request: RunRequest) -> None:
        """Also build the command and find its program, so a bad --base-command or a
        missing binary (of any command, not only a known agent's) is one clear error
        before any session is created."""
        super().preflight(request)
        invocation = self.build_command(request)
        if not invocation.argv:
            raise UsageError("the command to run is empty")
        resolve_program(invocation.argv[0], invocation.env)
        self._prepared = (request, invocation)

    def invocation(self, request: RunRequest) -> Invocation:
        """The command preflight() built for this request (built anew for another)."""
        if self._prepared is not None and self._prepared[0] is request:
            return self._prepared[1]
        return self.build_command(request)

    async def run(self, request: RunRequest, output: Output) -> Outcome:
        if request.native_session_id is None and request.history and self.seed_transcript:
            why = "no native session id was stored for this session" \
                if "resume" in self.features else f"{self.name} cannot resume a session"
            output.emit([_fresh_session_entry(why)])
            return (await self._run_once(_seeded(request), output))[0]
        outcome, attempt = await self._run_once(request, output)
        if request.native_session_id is not None and self.seed_transcript and \
                self.resume_failed(outcome, attempt):
            output.emit([_fresh_session_entry(
                f"resuming {self.name} session {request.native_session_id} failed")])
            outcome = (await self._run_once(_seeded(request), output))[0]
        return outcome

    def resume_failed(self, outcome: Outcome, attempt: Attempt) -> bool:
        """Did the agent refuse to resume (rather than fail at the task)? A non-zero exit
        soon after the start, with no message or tool call, saying nothing or complaining
        about the session."""
        if outcome.exit_code == 0 or attempt.produced:
            return False
        if attempt.elapsed > self.resume_failure_window:
            return False
        said = attempt.said + ([outcome.error] if outcome.error else [])
        return not said or any(_RESUME_COMPLAINT.search(line) for line in said)

    async def _run_once(self, request: RunRequest, output: Output
                        ) -> tuple[Outcome, Attempt]:
        invocation = self.invocation(request)
        parser = self.parser(request)
        watch = _Watch(output)
        reported: list[str] = []
        if invocation.native_session_id:
            reported.append(invocation.native_session_id)
            output.set_native_session_id(invocation.native_session_id)

        def on_lines(stream: str, lines: list[str]) -> None:
            watch.note(stream, lines)
            if stream == "stdout":
                parser.feed_lines(lines, watch)
                native = parser.native_session_id
                if native and (not reported or reported[-1] != native):
                    reported.append(native)
                    output.set_native_session_id(native)
            else:
                output.emit(stderr_entries(lines))

        started = time.monotonic()
        child = await Child.spawn(invocation.argv, on_lines=on_lines, cwd=request.cwd,
                                  env=invocation.env, stdin=invocation.stdin,
                                  line_cap=request.line_cap)
        try:
            code = await child.wait()
        except asyncio.CancelledError:
            await asyncio.shield(self.interrupt(child))
            raise
        finally:
            if child.returncode is None:
                await asyncio.shield(child.stop(grace=self.stop_grace))
        tail = parser.finish()
        if tail:
            watch.emit(tail)
        native = parser.native_session_id or invocation.native_session_id
        attempt = Attempt(watch.produced, watch.said, time.monotonic() - started)
        return Outcome(code, native, parser.error), attempt

    async def interrupt(self, child: Child) -> None:
        """Stop the agent on cancel: the gentle way first where the agent has one."""
        await child.stop(grace=self.stop_grace)


@dataclass(frozen=True, slots=True)
class Attempt:
    """What one agent process did, for telling a refused resume from a failed task."""

    produced: bool  # an assistant message, thinking or a tool call came out
    said: list[str]  # its first stderr / plain-text lines, for the complaint
    elapsed: float


_RESUME_COMPLAINT = re.compile(r"session|conversation|thread|chat|resume", re.IGNORECASE)
_PRODUCTIVE = frozenset({EntryKind.ASSISTANT_MESSAGE.value, EntryKind.THINKING.value,
                         EntryKind.TOOL_CALL.value})


class _Watch:
    """Passes entries on to the real output, noting whether the agent did anything."""

    def __init__(self, output: Output) -> None:
        self.output = output
        self.produced = False
        self.said: list[str] = []

    def note(self, stream: str, lines: list[str]) -> None:
        # stderr and plain stdout text only: every JSON event carries a "session_id" key,
        # which is no complaint about the session.
        if len(self.said) < 20:
            self.said.extend(line for line in lines[: 20 - len(self.said)]
                             if line.strip() and not (stream == "stdout" and
                                                      line.lstrip().startswith("{")))

    def emit(self, entries: list[Entry]) -> None:
        if not self.produced:
            self.produced = any(e.get("kind") in _PRODUCTIVE for e in entries)
        self.output.emit(entries)

    def emit_json(self, items: list[tuple[Entry, str]]) -> None:
        if not self.produced:
            self.produced = any(e.get("kind") in _PRODUCTIVE for e, _ in items)
        self.output.emit_json(items)

    def set_native_session_id(self, native_id: str) -> None:
        self.output.set_native_session_id(native_id)


def _seeded(request: RunRequest) -> RunRequest:
    return dataclasses.replace(request, native_session_id=None,
                               prompt=transcript_prompt(request.history, request.prompt))


def _fresh_session_entry(why: str) -> Entry:
    return {"kind": EntryKind.SYSTEM.value,
            "text": f"{why}: starting a fresh agent session seeded with the transcript "
                    "of this session"}


def _denied_turn(item: Entry) -> str:
    """A refused approval in a seeded transcript, with the person's message: the agent
    that starts afresh learns what was refused and why (most agents are told only
    "cancelled by user" in their own session, if anything)."""
    raw = item.get("data")
    data: dict[str, Any] = raw if isinstance(raw, dict) else {}
    title = str(item.get("text") or data.get("title") or "a request")
    message = data.get("message")
    said = f"; their message: {message}" if isinstance(message, str) and message else ""
    return f"(the user denied: {title}{said})"


def transcript_prompt(history: tuple[Entry, ...] | list[Entry], prompt: str,
                      limit: int = 12_000) -> str:
    """A fresh agent session seeded with the conversation so far, for agents that cannot
    resume their own session. Keeps the newest turns within ``limit`` characters."""
    turns: list[str] = []
    for item in history:
        kind = item.get("kind")
        if item.get("delta"):
            continue  # a streamed piece; the whole message follows it
        if kind == EntryKind.USER_MESSAGE.value:
            turns.append(f"User: {item.get('text', '')}")
        elif kind == EntryKind.ASSISTANT_MESSAGE.value:
            turns.append(f"Assistant: {item.get('text', '')}")
        elif kind == EntryKind.TOOL_CALL.value and item.get("status") not in (None, "running"):
            turns.append(f"(tool {item.get('action', 'other')} {item.get('target', '')}: "
                         f"{item.get('status')})")
        elif kind == EntryKind.APPROVAL.value and item.get("status") == "denied":
            turns.append(_denied_turn(item))
    kept: list[str] = []
    size = 0
    for turn in reversed(turns):
        size += len(turn) + 1
        if size > limit:
            kept.append("(earlier turns omitted)")
            break
        kept.append(turn)
    if not kept:
        return prompt
    transcript = "\n".join(reversed(kept))
    return (f"This continues an earlier conversation. Transcript so far:\n{transcript}\n\n"
            f"New request:\n{prompt}")
