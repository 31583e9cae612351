"""`aura compare GROUP`: one row per attempt of a group, ranked, and two attempts' diffs.

A row holds the executor and model, the state, the duration (first execution's start to
the last one's end), tokens and cost (service/usage.py), files changed and lines +/-
(the worktree, committed or not, against its base; once the worktree is removed, its
branch), the check results (service/checks.py), the review verdict and whether the
attempt was chosen (landed) or not. Ranking (``rank_key``, pure): every check passing
first, then fewer failures (a failed or cancelled attempt counts as one more), then the
review verdict (approve, none, request_changes), then cost (unknown last), then number.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from aura.contracts import State
from aura.service import usage as usage_service
from aura.service.checks import CHECKS_KEY
from aura.service.ledger import workspace_of
from aura.store import Store
from aura.store_attempts import Attempt, Group

_VERDICT_RANK = {"approve": 0, None: 1, "request_changes": 2}
_SUCCEEDED = (State.DONE.value, State.REVIEW.value)


def _seconds(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    try:
        return (datetime.fromisoformat(end.replace("Z", "+00:00")) -
                datetime.fromisoformat(start.replace("Z", "+00:00"))).total_seconds()
    except ValueError:
        return None


def _changes(session: Any) -> dict[str, Any]:
    """Files and lines changed, from the worktree if it is there, else from its branch."""
    from aura import git
    from aura import workspace as ws_module
    from aura.errors import AuraError

    ws = workspace_of(session)
    if ws is None:
        return {"files": None, "insertions": None, "deletions": None}
    files = insertions = deletions = 0
    try:
        for repo in ws.repos:
            if Path(repo.path).is_dir() and not ws.removed:
                continue
            if repo.branch and git.branch_exists(repo.repo, repo.branch):
                found = git.tree_changes(repo.repo, repo.base,
                                         git.tree_of(repo.repo, repo.branch))
                files += len(found)
                insertions += sum(int(str(f["insertions"])) for f in found)
                deletions += sum(int(str(f["deletions"])) for f in found)
        if not ws.removed:
            for change in ws_module.changes(ws):
                files += len(change["files"])
                insertions += change["insertions"]
                deletions += change["deletions"]
    except AuraError:
        return {"files": None, "insertions": None, "deletions": None}
    return {"files": files, "insertions": insertions, "deletions": deletions}


def row(store: Store, attempt: Attempt, prices: Mapping[str, Any]) -> dict[str, Any]:
    """What `aura compare` shows of one attempt (see the module docstring)."""
    from aura.service.pipeline import last_review

    session = store.get_session(attempt.session)
    executions = store.list_executions(session.id)
    started = min((e.started_at for e in executions), default=None)
    ended = None if any(e.ended_at is None for e in executions) else \
        max((e.ended_at or "" for e in executions), default=None)
    totals = usage_service.aggregate(usage_service.session_items(store, session),
                                     "session", prices)
    total = totals[0].to_json() if totals else None
    checks = session.options.get(CHECKS_KEY) or []
    review = last_review(store.entries(session.id))
    ws = workspace_of(session)
    branch = next((r.branch for r in ws.repos if r.branch), None) if ws else None
    return {
        "number": attempt.number, "session": session.id, "executor": attempt.executor,
        "model": session.model, "state": session.state.value,
        "duration_s": _seconds(started, ended),
        "input_tokens": total["input_tokens"] if total else 0,
        "output_tokens": total["output_tokens"] if total else 0,
        "cost_usd": total["cost_usd"] if total else 0.0,
        "usage_entries": total["entries"] if total else 0,
        **_changes(session), "branch": branch,
        "checks": [{"command": c.get("command"), "exit_code": c.get("exit_code")}
                   for c in checks if isinstance(c, dict)],
        "review": review.get("verdict") if review else None,
        "chosen": attempt.chosen,
    }


def failures(data: Mapping[str, Any]) -> int:
    failed = sum(1 for c in data["checks"] if c.get("exit_code") != 0)
    return failed + (0 if data["state"] in _SUCCEEDED else 1)


def rank_key(data: Mapping[str, Any]) -> tuple[int, int, int, float, int]:
    """Smaller ranks first (see the module docstring)."""
    passing = bool(data["checks"]) and all(c.get("exit_code") == 0 for c in data["checks"]) \
        and data["state"] in _SUCCEEDED
    cost = data.get("cost_usd")
    return (0 if passing else 1, failures(data), _VERDICT_RANK.get(data.get("review"), 1),
            math.inf if cost is None else float(cost), int(data["number"]))


def ranked(store: Store, group: Group, config: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every attempt's row, best first, each with its ``rank`` (1 = best)."""
    prices = usage_service.prices(config)
    rows = sorted((row(store, a, prices) for a in store.attempts(group.id)), key=rank_key)
    for i, data in enumerate(rows, 1):
        data["rank"] = i
    return rows


def diff(store: Store, attempt: Attempt) -> str:
    """The attempt's patch against its base: the worktree as it is now, or, once it is
    removed, its branch."""
    from aura import git
    from aura import workspace as ws_module

    session = store.get_session(attempt.session)
    ws = workspace_of(session)
    if ws is None:
        return ""
    if not ws.removed and all(Path(r.path).is_dir() for r in ws.repos):
        return ws_module.diff(ws)
    return "".join(git.diff_text(r.repo, r.base, git.tree_of(r.repo, r.branch))
                   for r in ws.repos if r.branch and git.branch_exists(r.repo, r.branch))
