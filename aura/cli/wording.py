"""How aura says things to people: durations ("12 s"), ages ("5m ago"), a session's
state moves ("running", "done in 12 s", "failed after 3 m 5 s (exit 2)"), review verdicts,
state colours and the repo a session worked on. The machine names stay in `--json`."""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

# Colours of states in tables and outcome lines (click.style names; see Painter).
STATE_STYLES: dict[str, tuple[str, ...]] = {
    "done": ("green",), "failed": ("red",), "worker_lost": ("red",),
    "cancelled": ("dim",), "review": ("cyan",), "queued": ("dim",),
    "prepare_workspace": ("yellow",), "setup": ("yellow",), "coding_initial": ("yellow",),
    "coding_follow_up": ("yellow",), "cleanup": ("yellow",), "running": ("yellow",),
}
# What a move into a state means, for the states a turn passes through.
_MOVES = {"queued": "queued", "prepare_workspace": "preparing the workspace",
          "setup": "running setup scripts", "coding_initial": "running",
          "coding_follow_up": "running the follow-up", "cleanup": "running cleanup scripts",
          "worker_lost": "worker lost"}
_RESTING = frozenset({None, "", "queued", "review", "done", "failed", "cancelled",
                      "worker_lost"})
VERDICTS = {"approve": "approved", "request_changes": "changes requested"}


def duration(seconds: float) -> str:
    """A length of time for people: "12 s", "3 m 5 s", "2 h 5 m"."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        minutes, rest = divmod(seconds, 60)
        return f"{minutes} m" + (f" {rest} s" if rest else "")
    hours, rest = divmod(seconds // 60, 60)
    return f"{hours} h" + (f" {rest} m" if rest else "")


def parse_ts(ts: Any) -> datetime | None:
    """An ISO-8601 timestamp (a trailing Z allowed) as an aware datetime; None if not one."""
    if not isinstance(ts, str) or not ts:
        return None
    try:
        when = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def ago(ts: Any, now: datetime | None = None) -> str:
    """How long ago ``ts`` was: "just now", "5m ago", "2h ago", "3d ago"; a week or more
    back (or in the future), the local date; "-" when it is no timestamp."""
    when = parse_ts(ts)
    if when is None:
        return "-"
    seconds = ((now or datetime.now(UTC)) - when).total_seconds()
    if -60 < seconds < 60:
        return "just now"
    if 0 < seconds < 3600:
        return f"{int(seconds // 60)}m ago"
    if 0 < seconds < 86400:
        return f"{int(seconds // 3600)}h ago"
    if 0 < seconds < 7 * 86400:
        return f"{int(seconds // 86400)}d ago"
    return when.astimezone().strftime("%Y-%m-%d")


def iso_utc(epoch: Any) -> str | None:
    """An epoch time (seconds) as aura's ISO-8601 UTC text; None for anything else."""
    if isinstance(epoch, bool) or not isinstance(epoch, (int, float)) or epoch != epoch:
        return None
    try:
        when = datetime.fromtimestamp(epoch, UTC)
    except (OverflowError, OSError, ValueError):
        return None
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Story:
    """What the state entries of a turn mean so far: when the turn started (for "done in
    12 s") and the review's verdict (for the outcome line)."""

    def __init__(self) -> None:
        self.started: datetime | None = None
        self.verdict: str | None = None
        self.stage: str | None = None  # the state the last move went to
        self.session = ""  # the session's id, once known

    def stage_of(self, entry: Mapping[str, Any]) -> str | None:
        """The stage an entry belongs to: its own (stored entries say), else the state
        the turn is in (a live entry does not carry it)."""
        stage = entry.get("stage")
        return stage if isinstance(stage, str) else self.stage

    def move(self, entry: Mapping[str, Any]) -> tuple[str, tuple[str, ...]]:
        """The words and style of a state entry."""
        src = entry.get("from") if isinstance(entry.get("from"), str) else None
        dst = str(entry.get("to") or "")
        # A live entry (the --no-tui stream) has no timestamp yet: it happens now.
        at = parse_ts(entry.get("ts")) or datetime.now(UTC)
        if ((src or None) in _RESTING and dst not in _RESTING) or self.started is None:
            self.started = at
        took = duration((at - self.started).total_seconds()) \
            if self.started is not None else None
        self.stage = dst
        reason = str(entry.get("reason") or "")
        if dst == "done":
            return (f"done in {took}" if took else "done"), ("green",)
        if dst == "failed":
            code = entry.get("exit_code")
            exit_text = f" (exit {code})" if isinstance(code, int) and code else ""
            return (f"failed after {took}" if took else "failed") + exit_text, ("red",)
        if dst == "cancelled":
            return ("cancelled" + (f" after {took}" if took else "") +
                    (f": {reason}" if reason else "")), ("dim",)
        if dst == "review":
            words = "reviewing the changes" if reason == "reviewing" else "waiting for review"
            return words, ("cyan",)
        return _MOVES.get(dst, dst.replace("_", " ")), STATE_STYLES.get(dst, ("yellow",))


def state_words(entry: Mapping[str, Any]) -> str:
    """A state entry's words on its own, without the turn around it (no duration): the
    TUI's log, whose entries may come in any order (older pages are read back)."""
    dst = str(entry.get("to") or "")
    reason = str(entry.get("reason") or "")
    if dst == "failed":
        code = entry.get("exit_code")
        return "failed" + (f" (exit {code})" if isinstance(code, int) and code else "")
    if dst == "cancelled":
        return "cancelled" + (f": {reason}" if reason else "")
    if dst == "review":
        return "reviewing the changes" if reason == "reviewing" else "waiting for review"
    return _MOVES.get(dst, dst.replace("_", " "))


def verdict_words(data: Mapping[str, Any]) -> tuple[str, tuple[str, ...]]:
    """A review entry's outcome: "review: approved", "review: changes requested"…"""
    if data.get("skipped"):
        return f"review skipped: {data['skipped']}", ("dim",)
    verdict = data.get("verdict")
    if verdict in VERDICTS:
        return f"review: {VERDICTS[str(verdict)]}", \
            ("green",) if verdict == "approve" else ("yellow",)
    return "review: no verdict given (the reviewer did not end with VERDICT: …)", ("yellow",)


def repo_label(options: Mapping[str, Any], cwd: str) -> str:
    """The name of the repo a session worked on (its workspace's source checkouts), else
    of its directory; a directory under aura's own workspaces maps back to that name."""
    ws = options.get("workspace") if isinstance(options, Mapping) else None
    if isinstance(ws, dict) and isinstance(ws.get("repos"), list):
        names = [os.path.basename(str(r.get("repo", "")).rstrip("/")) for r in ws["repos"]
                 if isinstance(r, dict) and r.get("repo")]
        if names:
            return ",".join(dict.fromkeys(names))
    if not cwd:
        return "-"
    from aura.paths import data_dir

    workspaces = os.path.join(str(data_dir()), "workspaces") + os.sep
    if cwd.startswith(workspaces):
        return _worktree_source(cwd) or cwd[len(workspaces):].split(os.sep)[0]
    if cwd.rstrip("/") == os.path.expanduser("~"):
        return "~"
    return os.path.basename(cwd.rstrip("/")) or cwd


def _worktree_source(path: str) -> str | None:
    """The name of the checkout a git worktree at ``path`` belongs to, read from its
    ``.git`` file ("gitdir: <repo>/.git/worktrees/<name>"); None when it is none."""
    try:
        with open(os.path.join(path, ".git"), encoding="utf-8") as handle:
            line = handle.readline(4096).strip()
    except (OSError, UnicodeDecodeError):
        return None
    gitdir = line.removeprefix("gitdir:").strip()
    marker = os.sep + ".git" + os.sep + "worktrees" + os.sep
    if not line.startswith("gitdir:") or marker not in gitdir:
        return None
    return os.path.basename(gitdir.split(marker)[0]) or None
