"""The run options of `aura run` in one place: the typed model with its defaults, built
from the parsed command line (``from_cli``), sent to the coordinator by `aura run --on`
(``to_wire``) and read back, validated, by a worker (``from_wire``).

What a worker refuses by policy (commands, risky variables) is not decided here but in
``aura.remote.worker.policy``: this module only says what is well-formed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aura.errors import UsageError, WireError
from aura.executors.base import Approvals, Asker
from aura.process import DEFAULT_LINE_CAP
from aura.service.approvals import DEFAULT_TIMEOUT, Person

__all__ = ["OPTIONAL_WIRE_KEYS", "WIRE_KEYS", "RunOptions", "WireError"]

# What `aura run --on` sends, in the order it sends it (the coordinator passes it through).
WIRE_KEYS = ("prompt", "executor", "append_prompt", "cwd", "session", "model",
             "base_command", "params", "vars", "openai_endpoint", "line_cap", "repos", "base",
             "in_place", "allow_dirty", "setup", "cleanup", "review", "review_executor",
             "approvals")
# Sent only when given (a worker from before them accepts the rest of the options).
OPTIONAL_WIRE_KEYS = ("approval_timeout", "secret_vars", "ask", "max_cost", "timeout",
                      "idle_timeout", "checks")
MAX_APPROVAL_TIMEOUT = 7 * 24 * 3600  # a week: longer is a typo, not a plan
MAX_COST = 1e6  # USD: a --max-cost beyond this is a typo, not a budget
MAX_RUN_TIMEOUT = 7 * 24 * 3600  # --timeout/--idle-timeout: the same week
_APPROVAL_FLAGS = ("yolo", "force", "trust", "allow_all_tools")
_APPROVAL_LISTS = ("allow_tools", "deny_tools")


@dataclass(frozen=True, slots=True)
class RunOptions:
    """What the user asked for on `aura run` (already parsed, not yet validated against a
    session or a workspace)."""

    prompt: str
    executor: str | None = None  # None: the session's, or the default
    append_prompt: str = ""
    cwd: str | None = None
    session: str | None = None
    resume_latest: bool = False
    model: str | None = None
    base_command: str | None = None
    params: tuple[str, ...] = ()
    vars: dict[str, str] = field(default_factory=dict)  # stored with the session
    # --secret-var: given to the agent, never stored; the session keeps the names only
    secret_vars: dict[str, str] = field(default_factory=dict)
    approvals: Approvals = field(default_factory=Approvals)
    executor_paths: dict[str, str] = field(default_factory=dict)
    openai_endpoint: str | None = None
    line_cap: int = DEFAULT_LINE_CAP
    asker: Asker | None = None  # a person to ask (model, endpoint); None: nobody
    person: Person | None = None  # who answers approval requests here; None: nobody
    approval_timeout: float = DEFAULT_TIMEOUT  # seconds a request waits with nobody asked
    ask: bool = True  # False (--no-ask): no approval protocol, the flags answer
    refresh_model_cache: bool = False  # discover models again (ollama, lms, custom)
    # The pipeline (see pipeline.py): workspaces, scripts, review.
    repos: tuple[str, ...] = ()  # --repo (a --cwd inside a repo counts as one)
    base: str | None = None  # --base: branch or commit the new branches start from
    in_place: bool = False  # work in the checkout itself instead of a worktree
    allow_dirty: bool = False  # with --in-place: accept uncommitted changes
    setup: tuple[str, ...] = ()  # --setup commands, after .aura.toml's
    cleanup: tuple[str, ...] = ()  # --cleanup commands, after .aura.toml's
    checks: tuple[str, ...] = ()  # --check commands, after .aura.toml's check
    review: bool | None = None  # None: as the session was started
    review_executor: str | None = None
    wait: bool = False  # a follow-up of a busy session waits for it instead of failing
    max_cost: float | None = None  # --max-cost USD: the run is stopped once it spent more
    timeout: float | None = None  # --timeout: seconds the whole turn may take
    idle_timeout: float | None = None  # --idle-timeout: seconds without a recorded entry
    # Told when an approval waits or the run ends (the terminal bell); None: nobody.
    notify: Callable[[dict[str, Any]], None] | None = None

    # the command line -------------------------------------------------------------------

    @classmethod
    def from_cli(cls, kw: Mapping[str, Any], *, prompt: str | None = None,
                 asker: Asker | None = None, person: Person | None = None,
                 notify: Callable[[dict[str, Any]], None] | None = None) -> RunOptions:
        """From the keyword arguments click parsed for `aura run`/`aura tui`. ``prompt``
        replaces ``--prompt`` once the caller resolved it (``-`` reads stdin there)."""
        return cls(
            prompt=(kw.get("prompt") or "") if prompt is None else prompt,
            executor=_one_executor(kw.get("executor")), append_prompt=kw.get("append_prompt") or "",
            cwd=kw.get("cwd"), session=kw.get("session_id"),
            resume_latest=bool(kw.get("resume_latest")), model=kw.get("model"),
            base_command=kw.get("base_command"), params=tuple(kw.get("params") or ()),
            vars=dict(kw.get("vars_") or {}),
            secret_vars=dict(kw.get("secret_vars") or {}),
            approvals=Approvals(yolo=bool(kw.get("yolo")), force=bool(kw.get("force")),
                                trust=bool(kw.get("trust")),
                                auto_approve=kw.get("auto_approve"),
                                allow_all_tools=bool(kw.get("allow_all_tools")),
                                allow_tools=tuple(kw.get("allow_tools") or ()),
                                deny_tools=tuple(kw.get("deny_tools") or ())),
            executor_paths=dict(kw.get("executor_path") or {}),
            openai_endpoint=kw.get("openai_endpoint"),
            line_cap=kw.get("line_cap") or DEFAULT_LINE_CAP, asker=asker, person=person,
            approval_timeout=DEFAULT_TIMEOUT if kw.get("approval_timeout") is None
            else float(kw["approval_timeout"]),
            ask=not kw.get("no_ask"),
            refresh_model_cache=bool(kw.get("refresh_model_cache")),
            repos=tuple(kw.get("repos") or ()), base=kw.get("base"),
            in_place=bool(kw.get("in_place")), allow_dirty=bool(kw.get("allow_dirty")),
            setup=tuple(kw.get("setup") or ()), cleanup=tuple(kw.get("cleanup") or ()),
            checks=tuple(kw.get("checks") or ()),
            review=kw.get("review") or (True if kw.get("review_executor") else None),
            review_executor=kw.get("review_executor"), wait=bool(kw.get("wait")),
            max_cost=kw.get("max_cost"),
            timeout=_seconds_or_none(kw.get("timeout")),
            idle_timeout=_seconds_or_none(kw.get("idle_timeout")), notify=notify)

    # the wire ---------------------------------------------------------------------------

    def to_wire(self) -> dict[str, Any]:
        """The ``options`` of ``run.start`` (`aura run --on`). Options that name things on
        this machine cannot travel and are refused."""
        if self.resume_latest:
            raise UsageError("--resume-latest does not combine with --on; pass --session ID")
        if self.executor_paths:
            raise UsageError("--executor-path names a path on this machine; with --on, set "
                             "[executor_paths] in the worker's config instead")
        a = self.approvals
        wire: dict[str, Any] = {
            "prompt": self.prompt, "executor": self.executor,
            "append_prompt": self.append_prompt, "cwd": self.cwd, "session": self.session,
            "model": self.model, "base_command": self.base_command,
            "params": list(self.params), "vars": dict(self.vars),
            "openai_endpoint": self.openai_endpoint,
            # None: the worker's default (the wire has always left an unset cap unset).
            "line_cap": None if self.line_cap == DEFAULT_LINE_CAP else self.line_cap,
            "repos": list(self.repos), "base": self.base, "in_place": self.in_place,
            "allow_dirty": self.allow_dirty, "setup": list(self.setup),
            "cleanup": list(self.cleanup), "review": self.review,
            "review_executor": self.review_executor,
            "approvals": {"yolo": a.yolo, "force": a.force, "trust": a.trust,
                          "auto_approve": a.auto_approve,
                          "allow_all_tools": a.allow_all_tools,
                          "allow_tools": list(a.allow_tools),
                          "deny_tools": list(a.deny_tools)},
        }
        if self.approval_timeout != DEFAULT_TIMEOUT:
            # Sent only when given: a worker from before approvals accepts the rest.
            wire["approval_timeout"] = self.approval_timeout
        if not self.ask:
            wire["ask"] = False
        if self.secret_vars:
            # Only when given: a worker of an older aura refuses the key it does not know,
            # rather than running without the secret.
            wire["secret_vars"] = dict(self.secret_vars)
        if self.max_cost is not None:
            wire["max_cost"] = self.max_cost  # only when given, as secret_vars
        if self.checks:
            wire["checks"] = list(self.checks)  # only when given, as secret_vars
        for key in ("timeout", "idle_timeout"):  # only when given, like approval_timeout
            if getattr(self, key) is not None:
                wire[key] = getattr(self, key)
        return wire

    @classmethod
    def from_wire(cls, data: Mapping[str, Any], *, follow_up: bool,
                  default_cwd: str | None = None) -> RunOptions:
        """Options a worker received, checked for shape (raises WireError). The executor
        is made canonical (default: aura's default); a new session without ``cwd`` runs
        in ``default_cwd``, a follow-up in its own directory."""
        from aura.executors import registry

        unknown = sorted(set(data) - {*WIRE_KEYS, *OPTIONAL_WIRE_KEYS})
        if unknown:
            raise WireError(f"invalid params: unknown option(s) {', '.join(unknown)}")
        prompt = data.get("prompt")
        if not isinstance(prompt, str):
            raise WireError("invalid params: 'prompt' is required")
        variables, secrets = _names_to_strings(data, "vars"), _names_to_strings(
            data, "secret_vars")
        line_cap = data.get("line_cap")
        review = data.get("review")
        timeout = data.get("approval_timeout")
        if timeout is not None and (isinstance(timeout, bool) or
                                    not isinstance(timeout, (int, float)) or
                                    not 0 < timeout <= MAX_APPROVAL_TIMEOUT):
            raise WireError("invalid params: approval_timeout must be seconds, "
                            f"0 < t <= {MAX_APPROVAL_TIMEOUT}")
        max_cost = data.get("max_cost")
        if max_cost is not None and (isinstance(max_cost, bool) or
                                     not isinstance(max_cost, (int, float)) or
                                     not 0 < max_cost <= MAX_COST):
            raise WireError(f"invalid params: max_cost must be USD, 0 < x <= {MAX_COST:g}")
        return cls(
            max_cost=None if max_cost is None else float(max_cost),
            prompt=prompt,
            executor=_canonical(registry, data.get("executor") or registry.DEFAULT_EXECUTOR),
            append_prompt=_text(data, "append_prompt") or "",
            cwd=_text(data, "cwd") or (None if follow_up else default_cwd),
            session=_text(data, "session"), model=_text(data, "model"),
            base_command=_text(data, "base_command"), params=_strings(data, "params"),
            vars=variables, secret_vars=secrets, approvals=_approvals(data.get("approvals")),
            openai_endpoint=_text(data, "openai_endpoint"),
            line_cap=line_cap if isinstance(line_cap, int) and not isinstance(line_cap, bool)
            and line_cap > 0 else DEFAULT_LINE_CAP,
            approval_timeout=DEFAULT_TIMEOUT if timeout is None else float(timeout),
            ask=data.get("ask") is not False,
            repos=_strings(data, "repos"), base=_text(data, "base"),
            in_place=bool(data.get("in_place")), allow_dirty=bool(data.get("allow_dirty")),
            setup=_strings(data, "setup"), cleanup=_strings(data, "cleanup"),
            checks=_strings(data, "checks"),
            review=review if isinstance(review, bool) else None,
            review_executor=_canonical(registry, data["review_executor"])
            if data.get("review_executor") else None,
            timeout=_limit(data, "timeout"), idle_timeout=_limit(data, "idle_timeout"))


def secret_values(names: list[str], given: Mapping[str, str]) -> dict[str, str]:
    """The values of a session's secret variables for this turn: given now with
    ``--secret-var``, else read again from this process's environment (they are never
    stored, so a follow-up cannot take them from the session)."""
    import os

    values = dict(given)
    for name in names:
        if name not in values:
            if name not in os.environ:
                raise UsageError(f"the session passes secret variable {name} to the agent, "
                                 f"and it is not stored: set {name} in the environment or "
                                 f"pass --secret-var {name}=…")
            values[name] = os.environ[name]
    return values


def _one_executor(value: Any) -> str | None:
    """--executor is repeatable (one attempt each): a single run has one, or none."""
    if isinstance(value, (tuple, list)):
        return str(value[0]) if len(value) == 1 else None
    return value if isinstance(value, str) else None


def _seconds_or_none(value: Any) -> float | None:
    return None if value is None else float(value)


def _limit(data: Mapping[str, Any], key: str) -> float | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or \
            not 0 < value <= MAX_RUN_TIMEOUT:
        raise WireError(f"invalid params: {key} must be seconds, 0 < t <= {MAX_RUN_TIMEOUT}")
    return float(value)


def _names_to_strings(data: Mapping[str, Any], key: str) -> dict[str, str]:
    value = data.get(key) or {}
    if not (isinstance(value, dict) and
            all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())):
        raise WireError(f"invalid params: {key} must map names to strings")
    return dict(value)


def _canonical(registry: Any, name: object) -> str:
    from aura.errors import AuraError

    try:
        return str(registry.canonical(str(name)))
    except AuraError as exc:
        raise WireError(str(exc)) from None


def _text(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is None or isinstance(value, str):
        return value
    raise WireError(f"invalid params: {key} must be a string")


def _strings(data: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = data.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise WireError(f"invalid params: {key} must be strings")
    return tuple(value)


def _approvals(value: object) -> Approvals:
    value = value or {}
    if not isinstance(value, dict):
        raise WireError("invalid params: approvals must be an object")
    unknown = sorted(set(value) - {*_APPROVAL_FLAGS, *_APPROVAL_LISTS, "auto_approve"})
    if unknown:
        raise WireError(f"invalid params: unknown approval flag(s) {', '.join(unknown)}")
    flags = {k: value.get(k, False) for k in _APPROVAL_FLAGS}
    lists = {k: value.get(k) or [] for k in _APPROVAL_LISTS}
    auto = value.get("auto_approve")
    if not all(isinstance(v, bool) for v in flags.values()) or \
            not (auto is None or isinstance(auto, bool)) or \
            not all(isinstance(v, list) and all(isinstance(t, str) for t in v)
                    for v in lists.values()):
        raise WireError("invalid params: approvals: flags are true/false, tools are strings")
    return Approvals(yolo=flags["yolo"], force=flags["force"], trust=flags["trust"],
                     auto_approve=auto, allow_all_tools=flags["allow_all_tools"],
                     allow_tools=tuple(lists["allow_tools"]),
                     deny_tools=tuple(lists["deny_tools"]))
