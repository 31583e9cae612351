"""amp (Amp CLI) headless: ``amp -x PROMPT --stream-json`` (Claude Code-compatible
stream-json, see streamjson.py).

- Prompt: argv after ``-x``; one starting with ``-`` or very long goes on stdin instead
  (``amp --execute`` reads it there).
- Follow-up: ``amp threads continue THREAD_ID -x PROMPT --stream-json`` (the thread id is
  the ``session_id`` of its events, ``T-…``).
- ``--yolo`` → ``--dangerously-allow-all``. amp has no model flag (its ``--mode`` picks
  model and tools together; pass it with ``--param --mode --param smart``), so ``--model``
  is a usage error.
- Not on PATH: ``npx -y @ampcode/cli``.
"""

from __future__ import annotations

from typing import ClassVar

from aura.executors.base import CommandExecutor, Invocation, LineParser, RunRequest
from aura.executors.claude import prompt_on_stdin
from aura.executors.streamjson import StreamJsonParser


class AmpExecutor(CommandExecutor):
    name = "amp"
    program = "amp"
    npx_package = "@ampcode/cli"
    description = "Amp CLI (execute mode, stream-json; no approval channel: --yolo or nothing)"
    features: ClassVar[frozenset[str]] = frozenset({"resume", "--yolo"})

    def build_command(self, request: RunRequest) -> Invocation:
        argv = self.base_argv(request)
        if request.native_session_id:
            argv += ["threads", "continue", request.native_session_id]
        stdin: bytes | None = None
        if prompt_on_stdin(request.prompt):
            argv.append("--execute")
            stdin = request.prompt.encode()
        else:
            argv += ["-x", request.prompt]
        argv.append("--stream-json")
        if request.approvals.yolo:
            argv.append("--dangerously-allow-all")
        argv += request.params
        return Invocation(argv=argv, env=request.child_env(), stdin=stdin)

    def parser(self, request: RunRequest) -> LineParser:
        return StreamJsonParser(request.cwd)
