"""claude (Claude Code) headless: ``claude -p PROMPT --output-format stream-json --verbose``.

- Prompt: argv after ``-p``; a prompt that starts with ``-`` or is very long goes on
  stdin instead (``claude -p`` reads it there), so it is never taken for an option.
- New session: aura picks the id (``--session-id UUID``) and stores it before claude
  prints anything. Follow-up: ``--resume NATIVE_ID``.
- ``--model M`` → ``--model M``; ``--yolo`` → ``--dangerously-skip-permissions`` (plus
  ``IS_SANDBOX=1`` when running as root, which claude otherwise refuses; any other value,
  even ``yes``, is refused too);
  ``--auto-approve true|false`` → ``--permission-mode acceptEdits|default``.
- Output: stream-json (see streamjson.py).
"""

from __future__ import annotations

import os
import uuid
from typing import ClassVar

from aura.executors.base import CommandExecutor, Invocation, LineParser, RunRequest
from aura.executors.streamjson import StreamJsonParser

# Longer prompts go on stdin: one argv string is capped at 128 KiB on Linux.
ARGV_PROMPT_LIMIT = 100_000


def prompt_on_stdin(prompt: str) -> bool:
    """Whether a prompt must be delivered on stdin rather than as an argument."""
    return prompt.startswith("-") or len(prompt.encode()) > ARGV_PROMPT_LIMIT


def running_as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


class ClaudeExecutor(CommandExecutor):
    name = "claude"
    program = "claude"
    description = "Claude Code (stream-json)"
    features: ClassVar[frozenset[str]] = frozenset(
        {"resume", "models", "--yolo", "--auto-approve"})
    read_only_mode = "--permission-mode plan"

    def build_command(self, request: RunRequest) -> Invocation:
        argv = self.base_argv(request)
        stdin: bytes | None = None
        if prompt_on_stdin(request.prompt):
            argv += ["-p"]
            stdin = request.prompt.encode()
        else:
            argv += ["-p", request.prompt]
        argv += ["--output-format", "stream-json", "--verbose"]
        env = request.child_env()
        assigned: str | None = None
        if request.native_session_id:
            argv += ["--resume", request.native_session_id]
        else:
            assigned = str(uuid.uuid4())
            argv += ["--session-id", assigned]
        if request.model:
            argv += ["--model", request.model]
        approvals = request.approvals
        if request.read_only:
            argv += ["--permission-mode", "plan"]
        elif approvals.yolo:
            argv.append("--dangerously-skip-permissions")
            if running_as_root():
                env["IS_SANDBOX"] = "1"  # claude accepts only "1" ("yes" is refused)
        elif approvals.auto_approve is not None:
            argv += ["--permission-mode",
                     "acceptEdits" if approvals.auto_approve else "default"]
        argv += request.params
        return Invocation(argv=argv, env=env, stdin=stdin, native_session_id=assigned)

    def parser(self, request: RunRequest) -> LineParser:
        return StreamJsonParser(request.cwd)
