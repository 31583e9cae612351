"""A fake agent executor that speaks the approval contract: for each step of a script
(JSON in the AURA_FAKE_APPROVALS environment variable) it asks ``request.approver``, writes
the step's file only when allowed, and records what it was answered in the file named by
AURA_FAKE_DECISIONS (one JSON line per answer: choice, option, message, by).

``aura_with_fake_agent.py`` runs the real `aura` with this executor registered as
``fakeapprove``, so tests drive it as a real process.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import ClassVar

from aura.approvals import ApprovalKind, ApprovalOption, ApprovalRequest, OptionKind
from aura.contracts import EntryKind
from aura.executors.base import Executor, Outcome, Output, RunRequest

# What gemini offers (research/approvals.md): ids are the agent's own.
GEMINI_OPTIONS = (
    ApprovalOption("proceed_always", "Allow for this session", OptionKind.ALLOW_SESSION),
    ApprovalOption("proceed_once", "Allow", OptionKind.ALLOW_ONCE),
    ApprovalOption("cancel", "Reject", OptionKind.DENY),
)


def register() -> None:
    from aura.executors import registry

    registry.EXECUTORS["fakeapprove"] = ("tests.approval_agent", "FakeApprovalExecutor")


class FakeApprovalExecutor(Executor):
    name = "fakeapprove"
    description = "test agent asking for approvals"
    features: ClassVar[frozenset[str]] = frozenset(
        {"approvals", "--yolo", "--allow-tool", "--deny-tool", "--auto-approve"})

    async def run(self, request: RunRequest, output: Output) -> Outcome:
        steps = json.loads(request.env.get("AURA_FAKE_APPROVALS")
                           or os.environ.get("AURA_FAKE_APPROVALS", "[]"))
        log = request.env.get("AURA_FAKE_DECISIONS") or os.environ.get("AURA_FAKE_DECISIONS")
        for number, step in enumerate(steps):
            asked = ApprovalRequest(
                native_id=str(9000 + number), kind=ApprovalKind(step.get("kind", "command")),
                title=step["title"], detail=step.get("detail", {}), options=GEMINI_OPTIONS)
            if request.approver is None:
                output.emit([{"kind": EntryKind.ERROR.value, "text": "no approver"}])
                return Outcome(1, error="no approver")
            decision = await request.approver.ask(asked)
            if log:
                with open(log, "a") as fh:
                    fh.write(json.dumps({"choice": decision.choice.value, "by": decision.by,
                                         "option": decision.option.id if decision.option
                                         else None, "message": decision.message}) + "\n")
            if decision.allowed and step.get("write"):
                Path(request.cwd, step["write"]).write_text("written\n")
            said = "allowed" if decision.allowed else f"denied: {decision.message or ''}"
            output.emit([{"kind": EntryKind.ASSISTANT_MESSAGE.value,
                          "text": f"{step['title']}: {said}"}])
        return Outcome(0)
