"""Use cases: run a turn, continue a session, read sessions back. No click, no printing:
the CLI passes a watcher for entries and renders what comes back.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aura import engine
from aura.contracts import Entry, RunSummary, Session, State, Transition
from aura.errors import AuraError, InvalidTransition, UsageError
from aura.executors.base import Executor, RunRequest
from aura.liveness import sweep_orphans
from aura.recorder import Watcher, utc_now
from aura.service import preflight
from aura.service.hosts import Host, LocalHost
from aura.service.notify import Notifier, run_ended
from aura.service.pipeline import EXIT_INTERRUPTED, Plan, ReviewPlan, WorkspaceRequest
from aura.service.run_options import RunOptions
from aura.store import Claim, Store

__all__ = ["EXIT_INTERRUPTED", "RunResult", "run"]


@dataclass(frozen=True, slots=True)
class RunResult:
    session: Session
    execution_id: str
    state: str
    exit_code: int
    native_session_id: str | None
    usage: dict[str, float]
    error: str | None = None
    aura_error: bool = False  # the failure is aura's own, not the agent's

    def summary(self) -> RunSummary:
        """How the run ended (the last line of `aura run --json`)."""
        return RunSummary(self.session.id, self.execution_id, self.state, self.exit_code,
                          self.native_session_id, dict(self.usage), self.error)


def new_id() -> str:
    return str(uuid.uuid4())


# sessions ---------------------------------------------------------------------------------

def _resolve_session(store: Store, options: RunOptions, cwd: str | None) -> Session | None:
    if options.session and options.resume_latest:
        raise UsageError("use either --session or --resume-latest, not both")
    if options.session:
        return store.get_session(options.session)
    if options.resume_latest:
        from aura.executors import registry

        executor = registry.canonical(options.executor) if options.executor else None
        found = store.list_sessions(1, executor=executor, cwd=cwd)
        in_repo = _newest_in_workspace_of(store, executor, cwd)
        if in_repo is not None and (not found or in_repo.created_at > found[0].created_at):
            found = [in_repo]
        if not found:
            where = f" for --executor {executor}" if executor else ""
            raise AuraError(f"no session to resume in {cwd}{where}; "
                            "start one with `aura run` or see `aura session list`")
        return found[0]
    return None


def _newest_in_workspace_of(store: Store, executor: str | None, cwd: str | None
                            ) -> Session | None:
    """The newest session whose workspace was made from the repo ``cwd`` is in (its own
    cwd is the worktree, so `--resume-latest` from the checkout finds it this way)."""
    if cwd is None:
        return None
    from aura import git

    try:
        top = str(git.toplevel(cwd))
    except AuraError:
        return None
    for session in store.list_sessions(200, executor=executor):
        repos = (session.options.get("workspace") or {}).get("repos") or []
        if any(r.get("repo") == top for r in repos if isinstance(r, dict)):
            return session
    return None


def _resolve_cwd(path: str | None) -> str:
    resolved = Path(path).expanduser() if path else Path.cwd()
    if not resolved.is_dir():
        raise UsageError(f"--cwd {path!r} is not a directory")
    return str(resolved.resolve())


# running -----------------------------------------------------------------------------------

def _merge(options: RunOptions, session: Session | None) -> dict[str, Any]:
    """Settings for this turn: what the user gave now, else what the session ran with.
    Secret variables are kept by name only (``secret_vars``); their values are added to
    the agent's environment by ``_agent_env``, never to what is stored."""
    stored = session.options if session else {}
    secret_names = list(dict.fromkeys([*stored.get("secret_vars", []),
                                       *options.secret_vars]))
    merged_vars = {k: v for k, v in stored.get("vars", {}).items() if k not in secret_names}
    merged_vars.update((k, v) for k, v in options.vars.items() if k not in secret_names)
    return {
        "base_command": options.base_command if options.base_command is not None
        else stored.get("base_command"),
        "params": list(options.params) or list(stored.get("params", [])),
        "vars": merged_vars,
        "secret_vars": secret_names,
        "openai_endpoint": options.openai_endpoint or stored.get("openai_endpoint"),
        "cleanup": list(options.cleanup) or list(stored.get("cleanup", [])),
        "check": list(options.checks) or list(stored.get("check", [])),
        "review": options.review if options.review is not None
        else bool(stored.get("review", False)),
        "review_executor": options.review_executor or stored.get("review_executor"),
    }


def _agent_env(options: RunOptions, settings: dict[str, Any]) -> dict[str, str]:
    from aura.service.run_options import secret_values

    return {**settings["vars"], **secret_values(settings["secret_vars"],
                                                options.secret_vars)}


def build_executor(name: str) -> Executor:
    from aura.executors import registry

    return registry.load(name)()


def _workspace_request(options: RunOptions, cwd_given: str | None
                       ) -> tuple[WorkspaceRequest | None, str]:
    """The repos to make a workspace of (--repo, or a --cwd inside a repo), and the
    directory of the agent relative to the workspace root (a --cwd below a repo's top)."""
    repos = list(options.repos)
    subdir = ""
    if cwd_given is None:
        # One rule with or without --cwd: inside a repo, a worktree unless --in-place.
        cwd_given = str(Path.cwd().resolve())
    if not repos and cwd_given is not None:
        from aura import git

        try:
            top = git.toplevel(cwd_given)
        except AuraError:
            top = None
        if top is not None:
            repos = [str(top)]
            subdir = str(Path(cwd_given).relative_to(top)) if Path(cwd_given) != top else ""
    if not repos:
        for flag, given in (("--base", options.base), ("--in-place", options.in_place),
                            ("--allow-dirty", options.allow_dirty)):
            if given:
                raise UsageError(f"{flag} needs a repo: pass --repo PATH (or --cwd inside "
                                 "a git repository)")
        return None, ""
    if options.allow_dirty and not options.in_place:
        raise UsageError("--allow-dirty only means something with --in-place")
    return WorkspaceRequest(tuple(repos), options.base, options.in_place,
                            options.allow_dirty), subdir


async def run(options: RunOptions, store: Store, watcher: Watcher | None = None,
              host: Host | None = None) -> RunResult:
    """Run one turn (a new session, or a follow-up of ``--session``/``--resume-latest``)
    through the pipeline: workspace, setup, the agent, cleanup, review.

    A follow-up first takes its session (``Store.claim_session``): of two runs of one
    session only one runs, the other is refused naming it (or, with ``wait``, waits).

    Cancelling the task that awaits this (Ctrl-C) stops whatever runs and returns a
    ``cancelled`` result; every entry read so far is stored and uncommitted work in the
    workspace is saved either way."""
    host = host or LocalHost()
    sweep_orphans(store)
    cwd_hint = _resolve_cwd(options.cwd) if options.cwd else None
    session = _resolve_session(store, options, cwd_hint or (None if options.session else
                                                            _resolve_cwd(None)))
    claim = None
    if session is not None:
        # A queued task starts its first turn; any other session takes a follow-up.
        starts = session.state == State.QUEUED
        claim = await take_session(store, host, session.id, wait=options.wait,
                                   from_states=QUEUED_ONLY if starts else FOLLOW_UP_FROM)
        session = store.get_session(session.id)  # as the run before ours left it
    try:
        return await _run_turn(options, store, watcher, host, session, claim, cwd_hint)
    finally:
        if claim is not None:
            store.release_session(claim.session, claim.token)


async def _run_turn(options: RunOptions, store: Store, watcher: Watcher | None, host: Host,
                    session: Session | None, claim: Claim | None, cwd_hint: str | None
                    ) -> RunResult:
    from aura import config as config_module
    from aura.executors import registry
    from aura.service.pipeline import Orchestrator

    config = config_module.load()
    notifier = Notifier.from_config(config, options.notify)
    host = _approving(host, store, options, config, notifier)
    ws_request, subdir = _workspace_of(options, session, cwd_hint)
    name = registry.canonical(options.executor or (session.executor if session else
                                                   registry.default_executor(config)))
    cwd = cwd_hint or (session.cwd if session else _resolve_cwd(None))
    if not Path(cwd).is_dir():
        raise UsageError(f"the session's directory {cwd} no longer exists; pass --cwd")
    settings = _merge(options, session)
    session_id = session.id if session else new_id()
    request = _request(options, store, session, session_id, settings, config, name, cwd)
    executor = build_executor(name).for_request(request)  # custom: a command or an endpoint
    executor.validate(request)
    executor.preflight(request)  # a missing binary: one line, and no session recorded
    preflight.check_reviewer(settings["review_executor"] if settings["review"] else None,
                             name, request, {**config.get("executor_paths", {}),
                                             **options.executor_paths})
    preflight.check_workspace(ws_request)
    preflight.check_budget(store, config, name)
    preflight.check_endpoint(executor, request)
    session, stage = _record(store, session, session_id, name, cwd, request, settings)
    if claim is None:  # a new session: nobody else knows it yet, but keep the rule
        claim = await take_session(store, host, session.id, wait=False, from_states=None)
    try:
        plan = Plan(prompt=request.prompt, stage=stage, executor=executor, request=request,
                    workspace_request=ws_request, subdir=subdir, setup=tuple(options.setup),
                    cleanup=tuple(settings["cleanup"]), checks=tuple(settings["check"]),
                    vars=dict(request.env),
                    templates=dict(config.get("templates", {})), max_cost=options.max_cost)
        if settings["review"]:
            plan.review = _reviewer(settings, options, config, request, name)
        started = time.monotonic()
        finished = await Orchestrator(store, host, session, watcher, timeout=options.timeout,
                                      idle_timeout=options.idle_timeout).run(plan)
    finally:
        store.release_session(claim.session, claim.token)
    notifier(run_ended(session.id, finished.state.value, finished.exit_code,
                       duration=time.monotonic() - started, error=finished.error,
                       usage=finished.usage))
    session = store.get_session(session.id)
    return RunResult(session=session, execution_id=finished.execution_id,
                     state=finished.state.value, exit_code=finished.exit_code,
                     native_session_id=session.native_session_id, usage=finished.usage,
                     error=finished.error, aura_error=finished.aura_error)


class SessionBusy(AuraError):
    """Another run holds the session."""


FOLLOW_UP_FROM = frozenset(s.value for s in State if engine.allowed(s, State.CODING_FOLLOW_UP))
QUEUED_ONLY = frozenset({State.QUEUED.value})
WAIT_POLL = 0.1  # seconds between tries of --wait


async def take_session(store: Store, host: Host, session_id: str, *, wait: bool,
                       from_states: frozenset[str] | None = FOLLOW_UP_FROM) -> Claim:
    """Claim the session for this run, or raise SessionBusy naming the run that has it
    (with ``wait``: try again until it is free; a holder that died is swept)."""
    import asyncio

    fields = host.execution_fields()
    claim = Claim(session_id, new_id(), fields["host"], fields.get("pid"),
                  fields.get("pid_started"), utc_now())
    while True:
        try:
            held = store.claim_session(claim, from_states)
        except InvalidTransition as exc:
            raise AuraError(f"{exc} (see `aura session show {session_id[:8]}`)") from None
        if held is None:
            return claim
        if not wait:
            raise SessionBusy(_busy_text(store, held))
        await asyncio.sleep(WAIT_POLL)
        sweep_orphans(store)


def _busy_text(store: Store, held: Claim) -> str:
    running = [e for e in store.list_executions(held.session) if e.status == "running"]
    what = (f"execution {running[-1].id[:8]} ({running[-1].stage})" if running
            else "a run that is starting")
    return (f"session {held.session[:8]} is busy: {what} of aura pid {held.pid} on "
            f"{held.host} holds it since {held.at}; pass --wait to run after it")


def _approving(host: Host, store: Store, options: RunOptions, config: dict[str, Any],
               notify: Notifier | None = None) -> Host:
    """The host, with a broker for each agent run that speaks an approval protocol:
    the config's rules and the flags as policy, then the person surface, then the
    timeout. With --no-ask the host is left as it is: the flags answer."""
    if not options.ask:
        return host
    from aura.paths import config_path
    from aura.service.approval_policy import rules_from_flags, rules_from_table
    from aura.service.approvals import ApprovalSetup, ApprovingHost

    rules = [*rules_from_flags(options.approvals),
             *rules_from_table(config.get("approvals"), str(config_path()))]
    setup = ApprovalSetup(tuple(rules), options.person, options.approval_timeout, notify)
    return ApprovingHost(host, store, setup)


def _workspace_of(options: RunOptions, session: Session | None, cwd_hint: str | None
                  ) -> tuple[WorkspaceRequest | None, str]:
    """A new session's workspace request; a follow-up works in its session's own
    workspace (and refuses the options that would make a new one)."""
    from aura.executors import registry

    if session is None:
        return _workspace_request(options, cwd_hint)
    if session.state == State.QUEUED:  # a queued task: its first turn makes the workspace
        return _workspace_request(options, cwd_hint or session.cwd)
    if options.executor is not None and registry.canonical(options.executor) != \
            session.executor:
        raise UsageError(f"session {session.id[:8]} runs executor {session.executor}; "
                         f"drop --executor or start a new session")
    for flag, given in (("--repo", options.repos), ("--base", options.base),
                        ("--in-place", options.in_place), ("--setup", options.setup)):
        if given:
            raise UsageError(f"{flag} applies to a new session; a follow-up works in "
                             f"the session's own workspace")
    stored_ws = session.options.get("workspace")
    if isinstance(stored_ws, dict) and stored_ws.get("removed"):
        raise AuraError(f"the workspace of session {session.id[:8]} was removed (its "
                        f"work is on its branch and refs/aura/saved/{session.id}); "
                        "start a new session")
    return None, ""


def _request(options: RunOptions, store: Store, session: Session | None, session_id: str,
             settings: dict[str, Any], config: dict[str, Any], name: str, cwd: str
             ) -> RunRequest:
    """What the executor gets for this turn (the session's history on a follow-up)."""
    from aura import config as config_module

    paths = dict(config.get("executor_paths", {}))
    paths.update(options.executor_paths)
    history: tuple[Entry, ...] = tuple(store.entries(session.id)) if session else ()
    return RunRequest(
        prompt=options.prompt + options.append_prompt, cwd=cwd, session_id=session_id,
        execution_id="", native_session_id=session.native_session_id if session else None,
        model=options.model or (session.model if session else
                                config_module.default_model(config, name)),
        base_command=settings["base_command"], params=tuple(settings["params"]),
        env=_agent_env(options, settings), approvals=options.approvals,
        settings=config_module.executor_settings(config, name), program=paths.get(name),
        openai_endpoint=settings["openai_endpoint"], history=history,
        line_cap=options.line_cap, asker=options.asker,
        refresh_model_cache=options.refresh_model_cache)


def _record(store: Store, session: Session | None, session_id: str, name: str, cwd: str,
            request: RunRequest, settings: dict[str, Any]) -> tuple[Session, State]:
    """Store the new session (queued), or this turn's settings on the continued one."""
    if session is not None:
        first = session.state == State.QUEUED  # a queued task's first turn
        session = store.update_session(session.id, options={**session.options, **settings},
                                       model=request.model)
        return session, State.CODING_INITIAL if first else State.CODING_FOLLOW_UP
    now = utc_now()
    session = Session(id=session_id, executor=name, state=State.QUEUED, cwd=cwd,
                      created_at=now, updated_at=now, prompt=request.prompt,
                      model=request.model, options=settings)
    store.create_session(session)
    store.record_transition(Transition(session_id, None, State.QUEUED, now, "created"))
    return session, State.CODING_INITIAL


def _reviewer(settings: dict[str, Any], options: RunOptions, config: dict[str, Any],
              coding: RunRequest, coding_name: str) -> Any:
    """A factory of the reviewer's plan, given the project's [review] table: the same
    executor and settings as the coding agent unless another one is named."""
    from dataclasses import replace

    from aura import config as config_module
    from aura.executors import registry

    def make(project_review: dict[str, Any]) -> ReviewPlan:
        name = registry.canonical(options.review_executor or settings["review_executor"]
                                  or project_review.get("executor") or coding_name)
        executor = build_executor(name)
        same = name == coding_name and "base_command" not in project_review
        params = project_review.get("params", [])
        if not isinstance(params, list):
            raise UsageError("[review] params in .aura.toml must be a list")
        request = replace(
            coding, native_session_id=None, history=(),
            base_command=coding.base_command if same else project_review.get("base_command"),
            params=coding.params if same else tuple(str(p) for p in params),
            model=project_review.get("model") or (coding.model if same else None),
            settings=config_module.executor_settings(config, name),
            program=dict(config.get("executor_paths", {}), **options.executor_paths
                         ).get(name))
        executor.validate(request)
        executor.preflight(request)
        return ReviewPlan(executor, request)

    return make
