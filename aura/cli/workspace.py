"""`aura workspace list | diff ID | save ID | remove ID [--force] | land ID`: the worktrees
aura made (`land`: service/land.py).

A workspace's id is its session's id (a unique prefix is enough). `remove` refuses
uncommitted work that is not saved, nested repositories and ignored files too big to save
unless --force, and even then saves what it can first on ``refs/aura/saved/<session>…``
and says so; a branch holding commits is always kept, and so is any commit only the
worktree's HEAD or reflog reached.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from aura.cli.completion import complete_session, complete_workspace
from aura.cli.output import CONTEXT_SETTINGS, AuraGroup, open_user_store


@click.group("workspace", cls=AuraGroup, context_settings=CONTEXT_SETTINGS)
def workspace_command() -> None:
    """Workspaces (git worktrees) of sessions run with --repo.

    \b
    EXAMPLES
      aura workspace list
      aura workspace diff 3f2a9c
      aura workspace save 3f2a9c
      aura workspace remove 3f2a9c
      aura workspace prune --dry-run
    """


@workspace_command.command("list", context_settings=CONTEXT_SETTINGS)
@click.option("--all", "include_removed", is_flag=True, help="Include removed workspaces.")
@click.option("--json", "as_json", is_flag=True, help="A JSON array of workspaces.")
def workspace_list(include_removed: bool, as_json: bool) -> None:
    """Workspaces, newest first, with their branches and unsaved work."""
    from aura.cli.render import json_text
    from aura.service.workspaces import list_workspaces

    store = open_user_store()
    found = list_workspaces(store, include_removed=include_removed)
    if as_json:
        click.echo(json_text(found))
        return
    if not found:
        click.echo("no workspaces; `aura run --repo PATH --prompt …` makes one", err=True)
        return
    from aura.cli.render import use_color

    # click drops colour codes off a terminal; FORCE_COLOR (use_color) keeps them.
    colour = use_color(sys.stdout) or None
    for line in _workspace_table(found):
        click.echo(line, color=colour)


def _workspace_table(found: list[dict[str, Any]]) -> list[str]:
    """`workspace list` fitted to the terminal: the path is cut first, then the branch
    is left out."""
    import os

    from aura.cli.render import Painter, short_path, table, terminal_width, use_color
    from aura.cli.wording import STATE_STYLES

    paint = Painter(use_color(sys.stdout))
    rows = [("ID", "STATE", "REPO", "BRANCH", "WORK", "PATH")]
    for w in found:
        branches = sorted({r["branch"] or r["base_name"] for r in w["repos"]})
        repos = ",".join(dict.fromkeys(os.path.basename(str(r["repo"]).rstrip("/"))
                                       for r in w["repos"])) or "-"
        work = "removed" if w["removed"] else "missing" if w["missing"] else \
            ("unsaved" if w["unsaved"] else "saved/clean")
        rows.append((w["session"][:8], w["state"], repos, ", ".join(branches), work,
                     short_path(w["root"])))
    return table(rows, terminal_width(), flexible=5, drop=(3,),
                 styles={1: lambda cell: paint(cell, *STATE_STYLES.get(cell, ())),
                         4: lambda cell: paint(cell, "yellow") if cell == "unsaved"
                         else cell})


@workspace_command.command("diff", context_settings=CONTEXT_SETTINGS)
@click.argument("session_id", metavar="ID", shell_complete=complete_workspace)
def workspace_diff(session_id: str) -> None:
    """The patch of every repo from its base to the work tree (commits and uncommitted
    work, untracked files included)."""
    from aura.service.workspaces import diff

    text = diff(open_user_store(), session_id)
    if text:
        click.echo(text, nl=not text.endswith("\n"))
    else:
        click.echo("no changes", err=True)


@workspace_command.command("save", context_settings=CONTEXT_SETTINGS)
@click.argument("session_id", metavar="ID", shell_complete=complete_workspace)
def workspace_save(session_id: str) -> None:
    """Save uncommitted work on refs/aura/saved/<session> (the work tree is untouched)."""
    from aura.service.workspaces import save

    saves = save(open_user_store(), session_id)
    for s in saves:
        click.echo(f"saved uncommitted work of {s['repo']} on {s['ref']} "
                   f"(commit {s['commit'][:12]})")
    if not saves:
        click.echo("nothing to save: the work tree matches HEAD or is already saved",
                   err=True)


@workspace_command.command("remove", context_settings=CONTEXT_SETTINGS)
@click.argument("session_id", metavar="ID", shell_complete=complete_workspace)
@click.option("--force", is_flag=True,
              help="Remove even with unsaved work or nested repos (saved on refs/aura/saved "
                   "first) or big ignored files (deleted, and named).")
def workspace_remove(session_id: str, force: bool) -> None:
    """Remove a session's worktrees (branches with commits are kept)."""
    from aura.service.workspaces import remove

    saves, deleted = remove(open_user_store(), session_id, force=force)
    for s in saves:
        what = s.get("what", f"uncommitted work of {s['repo']}")
        owner = s["repo"].split(" (nested repo ")[0]
        click.echo(f"saved {what} on {s['ref']} (commit {s['commit'][:12]}); see it with "
                   f"`git -C '{owner}' show --stat {s['ref']}`", err=True)
    for line in deleted:
        click.echo(line, err=True)
    click.echo(f"removed the workspace of session {session_id}")


@workspace_command.command("land", context_settings=CONTEXT_SETTINGS)
@click.argument("session_id", metavar="ID", shell_complete=complete_session)
@click.option("--squash", is_flag=True, help="One new commit on the base branch instead "
                                             "of merging the branch's commits.")
@click.option("--pr", is_flag=True, help="Push the branch and open a pull request with "
                                         "`gh` instead of merging here.")
def workspace_land(session_id: str, squash: bool, pr: bool) -> None:
    """Commit what is uncommitted in the session's worktree (message: the prompt), then
    merge its branch into the base branch of your checkout. Refused, with nothing
    changed, when your checkout is dirty or on another branch, or the merge conflicts.
    The other attempts of its group are marked not chosen (their branches stay)."""
    from aura.errors import UsageError
    from aura.service.land import land

    if squash and pr:
        raise UsageError("--squash merges here, --pr opens a pull request: choose one")
    done = land(open_user_store(), session_id, squash=squash, pr=pr)
    if done.committed:
        click.echo(f"committed the uncommitted work on {done.branch} "
                   f"({done.committed[:12]})", err=True)
    if done.how == "pr":
        click.echo(f"pushed {done.branch}; pull request: {done.pr_url or '(see gh)'}")
    else:
        click.echo(f"landed {done.branch} on {done.base} in {done.checkout} ({done.how}, "
                   f"now {done.commit[:12]})")
    if done.not_chosen:
        click.echo(f"marked {len(done.not_chosen)} other attempt(s) not chosen; their "
                   "branches are kept", err=True)


@workspace_command.command("prune", context_settings=CONTEXT_SETTINGS)
@click.option("--dry-run", is_flag=True, help="Say what would be removed; remove nothing.")
def workspace_prune(dry_run: bool) -> None:
    """Remove the workspaces of finished sessions whose work is saved or merged, and
    workspaces whose session is gone; the ones with unsaved work are named and kept."""
    from aura.service.history import prune_workspaces

    found = prune_workspaces(open_user_store(), dry_run=dry_run)
    verb = "would remove" if dry_run else "removed"
    for p in found:
        who = f"session {p.session[:8]}" if p.session else "no session"
        if p.removed:
            click.echo(f"{verb} {p.path} ({who}: {p.why})")
        else:
            click.echo(f"kept {p.path} ({who}: {p.why})", err=True)
    if not found:
        click.echo("no workspaces", err=True)
