"""Values shared by every layer: states, entry kinds, tool actions, sessions, executions.

Nothing here imports anything else from aura. An *entry* is a plain JSON-shaped dict (see
``Entry``): it is the hot path (a million lines per run is normal for a chatty agent) and
the wire format, so it stays a dict rather than an object that would be built and then
serialised again for every line.
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field
from typing import Any, TypedDict


class State(enum.StrEnum):
    """Where a session is in the pipeline (snake_case in JSON and in the DB)."""

    QUEUED = "queued"
    PREPARE_WORKSPACE = "prepare_workspace"
    SETUP = "setup"
    CODING_INITIAL = "coding_initial"
    CODING_FOLLOW_UP = "coding_follow_up"
    CLEANUP = "cleanup"
    REVIEW = "review"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"
    WORKER_LOST = "worker_lost"

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATES


FINAL_STATES = frozenset({State.DONE, State.FAILED, State.CANCELLED, State.WORKER_LOST})
RUNNING_STATES = frozenset(
    {
        State.PREPARE_WORKSPACE,
        State.SETUP,
        State.CODING_INITIAL,
        State.CODING_FOLLOW_UP,
        State.CLEANUP,
        State.REVIEW,
    }
)


class ExecutionStatus(enum.StrEnum):
    """What became of one process run inside a session."""

    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"
    WORKER_LOST = "worker_lost"


class EntryKind(enum.StrEnum):
    USER_MESSAGE = "user_message"
    ASSISTANT_MESSAGE = "assistant_message"
    THINKING = "thinking"
    TOOL_CALL = "tool_call"
    ERROR = "error"
    SYSTEM = "system"
    USAGE = "usage"
    STATE = "state"
    RAW = "raw"
    SUMMARY = "summary"
    APPROVAL = "approval"  # a request the agent made and, later, its outcome (data)


ENTRY_KINDS = frozenset(k.value for k in EntryKind)


class ToolAction(enum.StrEnum):
    FILE_READ = "file_read"
    FILE_WRITE = "file_write"
    FILE_EDIT = "file_edit"
    COMMAND = "command"
    SEARCH = "search"
    WEB_FETCH = "web_fetch"
    TODO = "todo"
    TASK = "task"
    MCP = "mcp"
    OTHER = "other"


class Usage(TypedDict, total=False):
    input_tokens: int
    output_tokens: int
    cached_input_tokens: int
    reasoning_tokens: int
    cost_usd: float


# One normalized event. ``kind`` is always present; the envelope fields (seq, ts, session,
# execution, stage) are added by the recorder. ``from``/``to``/``reason`` belong to ``state``
# entries (hence the functional syntax: ``from`` is a keyword). Streamed text (model
# endpoints): ``delta`` marks a piece of an assistant_message/thinking as it arrives (for
# live views; history and `session show` skip it), ``streamed`` the whole message that
# follows the pieces, ``incomplete`` one whose stream was cut.
Entry = TypedDict(
    "Entry",
    {
        "seq": int, "ts": str, "session": str, "execution": str, "stage": str,
        "kind": str, "tool": str, "action": str, "target": str, "status": str,
        "text": str, "output": str, "usage": Usage, "stream": str, "id": str,
        "model": str, "from": str | None, "to": str, "reason": str, "data": Any,
        "delta": bool, "streamed": bool, "incomplete": bool, "finish_reason": str,
    },
    total=False,
)


ENVELOPE_KEYS = ("seq", "ts", "session", "execution", "stage")


def entry(kind: EntryKind | str, **fields: Any) -> Entry:
    """Build an entry, dropping fields that are None so the JSON stays small."""
    out: dict[str, Any] = {"kind": str(kind)}
    for key, value in fields.items():
        if value is not None:
            out[key] = value
    return out  # type: ignore[return-value]


@dataclass(frozen=True, slots=True)
class Transition:
    session: str
    src: State | None
    dst: State
    at: str
    reason: str
    execution: str | None = None

    def __post_init__(self) -> None:
        # Rows and wire messages carry the names; the object carries the enum (ValueError
        # for a name that is no state).
        if self.src is not None:
            object.__setattr__(self, "src", State(self.src))
        object.__setattr__(self, "dst", State(self.dst))

    def to_json(self) -> dict[str, Any]:
        return {"from": self.src.value if self.src else None, "to": self.dst.value,
                "at": self.at, "reason": self.reason,
                "execution": self.execution}

    @classmethod
    def from_json(cls, session: str, data: dict[str, Any]) -> Transition:
        return cls(session, data.get("from"), data["to"], data["at"], data.get("reason", ""),
                   data.get("execution"))


@dataclass(frozen=True, slots=True)
class Execution:
    id: str
    session: str
    stage: State
    status: ExecutionStatus = ExecutionStatus.RUNNING
    exit_code: int | None = None
    started_at: str = ""
    ended_at: str | None = None
    host: str = "local"
    pid: int | None = None
    pid_started: str | None = None
    executor: str | None = None
    reason: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "stage", State(self.stage))
        object.__setattr__(self, "status", ExecutionStatus(self.status))

    def to_json(self) -> dict[str, Any]:
        # "state" is the public name of the status (ARCHITECTURE.md JSON surfaces).
        return {"id": self.id, "stage": self.stage.value, "state": self.status.value,
                "exit_code": self.exit_code, "started_at": self.started_at,
                "ended_at": self.ended_at, "host": self.host, "executor": self.executor,
                "reason": self.reason}

    @classmethod
    def from_json(cls, session: str, data: dict[str, Any]) -> Execution:
        return cls(id=data["id"], session=session, stage=data["stage"], status=data["state"],
                   exit_code=data.get("exit_code"), started_at=data.get("started_at", ""),
                   ended_at=data.get("ended_at"), host=data.get("host", "local"),
                   executor=data.get("executor"), reason=data.get("reason"))


@dataclass(frozen=True, slots=True)
class Session:
    id: str
    executor: str
    state: State
    cwd: str
    created_at: str
    updated_at: str
    prompt: str = ""
    model: str | None = None
    native_session_id: str | None = None
    # Settings a follow-up needs to run the same way (base command, params, vars, flags).
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "state", State(self.state))

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["state"] = self.state.value
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Session:
        names = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    name: str
    version: str
    labels: tuple[str, ...] = ()
    capacity: int = 1
    executors: dict[str, str] = field(default_factory=dict)
    state: str = "offline"
    running: int = 0
    last_heartbeat: str | None = None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["labels"] = list(self.labels)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WorkerInfo:
        names = set(cls.__dataclass_fields__)
        values = {k: v for k, v in data.items() if k in names}
        values["labels"] = tuple(values.get("labels", ()))
        return cls(**values)


@dataclass(frozen=True, slots=True)
class RunSummary:
    """How a run ended: the last line of `aura run --json` (local or ``--on``) and the
    ``summary`` of the protocol's ``execution.finished``. ``session``/``execution`` are None
    only for a run that never started; ``exit_code`` is aura's exit code for the run."""

    session: str | None
    execution: str | None
    state: str
    exit_code: int | None
    native_session_id: str | None = None
    usage: dict[str, float] = field(default_factory=dict)
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"kind": EntryKind.SUMMARY.value, "session": self.session,
                "execution": self.execution, "state": self.state,
                "exit_code": self.exit_code, "native_session_id": self.native_session_id,
                "usage": dict(self.usage), "error": self.error}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunSummary:
        """Read a summary; absent optional keys take their defaults, a key of the wrong
        type is a ValueError."""
        state = data.get("state")
        if not isinstance(state, str):
            raise ValueError("a run summary needs a state (string)")
        usage = data.get("usage") or {}
        if not isinstance(usage, dict) or not all(
                isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool)
                for k, v in usage.items()):
            raise ValueError("a run summary's usage maps names to numbers")
        code = data.get("exit_code")
        if code is not None and (not isinstance(code, int) or isinstance(code, bool)):
            raise ValueError("a run summary's exit_code is an integer")
        return cls(session=_optional_str(data, "session"),
                   execution=_optional_str(data, "execution"), state=state, exit_code=code,
                   native_session_id=_optional_str(data, "native_session_id"),
                   usage={str(k): v for k, v in usage.items()},
                   error=_optional_str(data, "error"))


def _optional_str(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"a run summary's {key} is a string or null")
    return value
