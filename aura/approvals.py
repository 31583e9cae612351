"""Approvals, pure: what an agent asks a person before it acts, the choices it offers, and
the person's answer — the contract between executors (which translate their agent's native
request into an ``ApprovalRequest`` and an answer back), the broker that persists and routes
requests (``aura.service.approvals``), and every surface that answers (the TUI, the plain
prompt, ``aura approve``/``aura deny``, a client of the coordinator).

The agent's offered options keep their own ids (``proceed_once``, ``allow_once``, ``once``…);
aura classifies each by ``OptionKind`` from the agent's own kind and label, and a person
answers with a ``Choice``. ``pick()`` maps a choice back to one offered option, choosing by
kind and never an "always" option for "allow for this session" unless its label says the
session is what it covers.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


class ApprovalKind(enum.StrEnum):
    """What the agent wants to do."""

    COMMAND = "command"  # run a shell command (detail: command, cwd)
    FILE_CHANGE = "file_change"  # write, edit or delete files (detail: paths, diff)
    PERMISSION = "permission"  # a capability or a directory (detail: what and where)
    TOOL = "tool"  # any other tool call (detail: tool, input)
    QUESTION = "question"  # the agent asks the person something (detail: text)


class ApprovalState(enum.StrEnum):
    PENDING = "pending"
    ALLOWED = "allowed"
    DENIED = "denied"
    EXPIRED = "expired"  # nobody answered within the timeout: denied, and said so
    LOST = "lost"  # the agent, the run or the worker went away first; a late answer is refused

    @property
    def is_final(self) -> bool:
        return self is not ApprovalState.PENDING


class OptionKind(enum.StrEnum):
    """How aura reads one option the agent offers."""

    ALLOW_ONCE = "allow_once"
    ALLOW_SESSION = "allow_session"  # for the rest of this agent session
    ALLOW_ALWAYS = "allow_always"  # beyond the session (project/user settings): never by default
    DENY = "deny"
    DENY_AND_STOP = "deny_and_stop"  # deny and end the turn


class Choice(enum.StrEnum):
    """What a person (or a policy) answers."""

    ALLOW = "allow"
    ALLOW_SESSION = "allow_session"
    DENY = "deny"


@dataclass(frozen=True, slots=True)
class ApprovalOption:
    id: str  # the agent's own option id, echoed back verbatim
    label: str
    kind: OptionKind

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "label": self.label, "kind": self.kind.value}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ApprovalOption:
        return cls(str(data["id"]), str(data.get("label", "")), OptionKind(data["kind"]))


@dataclass(frozen=True, slots=True)
class ApprovalRequest:
    """One request as the executor saw it, before aura gives it an id."""

    native_id: str  # the agent's own request id
    kind: ApprovalKind
    title: str  # one line: "Run `rm -rf build && make`", "Write hello.txt"
    detail: dict[str, Any] = field(default_factory=dict)  # command+cwd, paths+diff, tool+input
    options: tuple[ApprovalOption, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"native_id": self.native_id, "kind": self.kind.value, "title": self.title,
                "detail": self.detail, "options": [o.to_json() for o in self.options]}


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer an executor sends back to its agent."""

    choice: Choice
    message: str | None = None  # told to the agent with a deny
    by: str = ""  # who answered: "user@host (tui)", "policy: allow Read", "timeout"
    option: ApprovalOption | None = None  # the offered option it maps to, when there are any

    @property
    def allowed(self) -> bool:
        return self.choice is not Choice.DENY


def classify(option_kind: str | None, label: str) -> OptionKind:
    """An agent's option as aura reads it, from the agent's own kind (ACP: allow_once,
    allow_always, reject_once, reject_always) and its label ("Allow for this session")."""
    words = label.lower()
    kind = (option_kind or "").lower()
    if kind.startswith("reject") or kind in {"deny", "cancel"} or \
            words.startswith(("deny", "reject", "no", "cancel")):
        return OptionKind.DENY
    if kind == "allow_always" or "always" in words or "all " in f"{words} ":
        return OptionKind.ALLOW_SESSION if "session" in words else OptionKind.ALLOW_ALWAYS
    if "session" in words:
        return OptionKind.ALLOW_SESSION
    return OptionKind.ALLOW_ONCE


def pick(options: Sequence[ApprovalOption], choice: Choice) -> ApprovalOption | None:
    """The offered option that carries out ``choice``, or None when the agent offers none
    that does (then the executor answers in its protocol's own terms, or denies)."""
    wanted = {
        Choice.ALLOW: (OptionKind.ALLOW_ONCE,),
        Choice.ALLOW_SESSION: (OptionKind.ALLOW_SESSION,),
        Choice.DENY: (OptionKind.DENY, OptionKind.DENY_AND_STOP),
    }[choice]
    for kind in wanted:
        for option in options:
            if option.kind is kind:
                return option
    return None
