"""The check stage: commands that judge an attempt's work (`--check CMD`, ``check`` in
``.aura.toml``), run in the workspace after the agent and its cleanup scripts.

Each check is run as ``sh -c CMD`` (the way setup and cleanup scripts are: users write
shell lines, with pipes and ``&&``), as its own execution of the ``cleanup`` state. Its
exit code and the last ``TAIL_LINES`` lines of its output are kept twice: as a ``system``
entry typed ``check`` (what `aura session show` shows) and on the session
(``options["checks"]``, what `aura compare` ranks by). A failing check does not fail the
session: the work is done, the check says how good it is.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aura.contracts import EntryKind, ExecutionStatus, State
from aura.service.ledger import Ledger

TAIL_LINES = 40  # lines of a check's output kept with its result
CHECK = "check"  # the executor name of a check's execution
CHECKS_KEY = "checks"  # where the results are kept in session.options


def result_text(result: Mapping[str, Any]) -> str:
    """``check passed: CMD`` or ``check failed (exit 1): CMD`` and its output's tail."""
    code = result.get("exit_code")
    head = f"check passed: {result['command']}" if code == 0 else \
        f"check failed (exit {code}): {result['command']}"
    tail = result.get("tail") or ""
    return head if code == 0 or not tail else f"{head}\n{tail}"


async def run_checks(ledger: Ledger, commands: list[tuple[str, str]],
                     env: Mapping[str, str],
                     run: Callable[[str, str, Mapping[str, str], Any], Awaitable[Any]]
                     ) -> list[dict[str, Any]]:
    """Run each ``(command, cwd)`` with ``run`` (the host's run_script); record and
    return the results. The session moves to ``cleanup`` first if it is not there."""
    results: list[dict[str, Any]] = []
    if not commands:
        return results
    for i, (command, cwd) in enumerate(commands):
        ledger.finish(ExecutionStatus.DONE, 0, "done")
        recorder = ledger.open(State.CLEANUP, CHECK)
        if i == 0 and ledger.session.state != State.CLEANUP:
            ledger.move(State.CLEANUP, "running checks")
        seen = recorder.seq
        outcome = await ledger.timed(run(command, cwd, env, recorder))
        recorder.flush()
        lines = [str(item.get("text", "")) for item in
                 ledger.store.entries(ledger.session.id, after_seq=seen)
                 if item.get("kind") == EntryKind.RAW.value]
        code = outcome.exit_code if outcome.exit_code >= 0 else 128 - outcome.exit_code
        result = {"command": command, "cwd": cwd, "exit_code": code,
                  "passed": code == 0, "tail": "\n".join(lines[-TAIL_LINES:])}
        ledger.emit({"kind": EntryKind.SYSTEM.value, "text": result_text(result),
                     "data": {"type": "check", **result}})
        ledger.finish(ExecutionStatus.DONE if code == 0 else ExecutionStatus.FAILED, code,
                      "check passed" if code == 0 else f"check failed (exit {code})")
        results.append(result)
    options = dict(ledger.session.options, **{CHECKS_KEY: results})
    ledger.session = ledger.store.update_session(ledger.session.id, options=options)
    return results


def summary(results: list[Mapping[str, Any]] | None) -> str:
    """``2/3 passed``, ``-`` without checks."""
    if not results:
        return "-"
    passed = sum(1 for r in results if r.get("exit_code") == 0)
    return f"{passed}/{len(results)} passed"
