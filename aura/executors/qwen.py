"""qwen-code (``qwen``) over ACP: ``qwen --acp``.

Flags: ``--model M`` → ``-m M``; ``--yolo`` → ``--yolo``; ``--auto-approve true|false`` →
``--approval-mode auto-edit|default``; with a person answering approvals (an approver on the
request) ``--approval-mode default``, which qwen 0.24 needs to ask at all. Authentication
comes from qwen's own settings or environment (e.g. ``OPENAI_API_KEY``/``OPENAI_BASE_URL``
with ``--param --auth-type
--param openai``).

Resume: ``session/load`` with the stored id works (recorded with 0.15.10); the agent
replays the old conversation, which aura already has and does not record again.
"""

from __future__ import annotations

from typing import ClassVar

from aura.executors.base import RunRequest
from aura.executors.gemini import GeminiExecutor


class QwenExecutor(GeminiExecutor):
    name = "qwen-code"
    program = "qwen"
    npx_package = "@qwen-code/qwen-code"
    description = "Qwen Code over ACP (qwen --acp)"
    acp_args: ClassVar[tuple[str, ...]] = ("--acp",)
    legacy_acp_args: ClassVar[tuple[str, ...] | None] = None
    features: ClassVar[frozenset[str]] = frozenset(
        {"resume", "models", "--yolo", "--auto-approve", "approvals", "interrupt"})
    approval_modes: ClassVar[tuple[str, str]] = ("auto-edit", "default")
    login_hint: ClassVar[str] = ("configure qwen's authentication (`qwen auth`), or use an "
                                 "OpenAI-compatible key: OPENAI_API_KEY with "
                                 "--param --auth-type --param openai")

    def session_option_works(self, request: RunRequest, kind: str) -> bool:
        # qwen's "Allow All Edits" works in a folder it does not trust (seen with 0.15.10),
        # unlike gemini's "Allow for this session".
        return True
