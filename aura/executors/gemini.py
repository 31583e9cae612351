"""gemini (Google's Gemini CLI) over ACP: ``gemini --acp`` (``--experimental-acp`` before
the flag was renamed; tried automatically when ``--acp`` is rejected).

Flags: ``--model M`` → ``-m M``; ``--yolo`` → ``--yolo --skip-trust`` (approving everything
includes trusting the workspace: an untrusted folder makes gemini fall back to asking);
``--trust`` → ``--skip-trust``; ``--auto-approve true|false`` → ``--approval-mode
auto_edit|default``. Permission requests that still reach aura are answered from the same
flags, or by a person through ``request.approver`` (then ``--approval-mode default`` unless
a flag says otherwise; see aura.executors.acp.client).

Resume: gemini advertises ``loadSession``, but in the recorded version (0.61.0)
``session/load`` fails with "No previous sessions found for this project": the lookup
behind it (the same one ``gemini --resume`` uses) finds no session created over ACP. So
``gemini -p … --resume ID --output-format stream-json`` cannot resume an ACP-born id
either; aura tries ``session/load`` (it costs one round trip and works once gemini fixes
it) and otherwise starts a new ACP session seeded with a transcript of the stored history,
saying so in a ``system`` entry.
"""

from __future__ import annotations

from typing import ClassVar

from aura.executors.acp.client import AcpExecutor
from aura.executors.base import Approvals, RunRequest

EDIT_KINDS = frozenset({"edit", "delete", "move", "read"})


class GeminiExecutor(AcpExecutor):
    name = "gemini"
    program = "gemini"
    npx_package = "@google/gemini-cli"
    description = "Google Gemini CLI over ACP (gemini --acp)"
    acp_args: ClassVar[tuple[str, ...]] = ("--acp",)
    legacy_acp_args: ClassVar[tuple[str, ...] | None] = ("--experimental-acp",)
    features: ClassVar[frozenset[str]] = frozenset(
        {"resume", "models", "--yolo", "--auto-approve", "--trust", "approvals", "interrupt"})
    approval_modes: ClassVar[tuple[str, str]] = ("auto_edit", "default")
    login_hint: ClassVar[str] = ("set GEMINI_API_KEY (or pass it with --var), or run `gemini` "
                                 "once to log in")

    def agent_args(self, request: RunRequest) -> list[str]:
        approvals = request.approvals
        args: list[str] = []
        if request.model:
            args += ["-m", request.model]
        if approvals.yolo:
            args.append("--yolo")
        elif approvals.auto_approve is not None:
            args += ["--approval-mode",
                     self.approval_modes[0 if approvals.auto_approve else 1]]
        elif request.approver is not None:
            # A person answers: the agent must ask (qwen 0.24 starts ACP sessions in
            # "auto" without this, approving workspace writes by itself).
            args += ["--approval-mode", self.approval_modes[1]]
        if (approvals.yolo or approvals.trust) and "--trust" in self.features:
            args.append("--skip-trust")
        return args

    def approves(self, approvals: Approvals, kind: str) -> bool:
        return approvals.yolo or (approvals.auto_approve is True and kind in EDIT_KINDS)

    def session_option_works(self, request: RunRequest, kind: str) -> bool:
        # "Allow for this session" on an edit switches gemini to auto-edit, which it
        # refuses in a folder it does not trust: the edit then fails ("Cannot enable
        # privileged approval modes in an untrusted folder."). Without --trust/--yolo
        # aura allows the edit once and remembers the session-wide answer itself.
        trusted = request.approvals.yolo or request.approvals.trust
        return trusted or kind not in EDIT_KINDS

    def allow_hint(self, kind: str) -> str:
        if kind in EDIT_KINDS:
            return "rerun with --auto-approve true (file edits) or --yolo (everything) " \
                   "to allow it"
        return "rerun with --yolo to allow it"
