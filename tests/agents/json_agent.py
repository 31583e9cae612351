"""A fake codex / opencode / copilot: replays the real agent's recorded output.

Usage: json_agent.py AGENT [the agent's own argv…], normally through a wrapper named like
the real binary (``codex``, ``opencode``, ``copilot``) on PATH, so aura runs it exactly as
it would run the real one.

It appends what it received to ``$FAKE_AGENT_LOG`` (one JSON object per run: argv, stdin,
cwd and the environment variables tests look at), then behaves like the recording: a
resume of the recorded session replays ``AGENT-resume``, anything else ``AGENT-write``
(``$FAKE_AGENT_RUN`` picks another recording), byte for byte, stdout and stderr, with the
recorded exit code. With ``$FAKE_AGENT_HANG=N`` it then waits to be interrupted, notes each
SIGINT in the log and exits 130 at the Nth. A resume of an unknown session fails the way the
agents do: a line on stderr and exit 1. ``--version`` prints the recorded version. codex
reads stdin to EOF before starting, as the real one does (so a caller that leaves stdin
open hangs, and the test times out).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "agents"
WATCHED_ENV = ("OPENCODE_CONFIG_CONTENT", "AURA_SESSION_ID", "FAKE_VAR", "OPENCODE_EXTRA")


def resumed_id(agent: str, args: list[str]) -> str | None:
    if agent == "codex" and "resume" in args:
        return args[args.index("resume") + 1]
    if agent == "opencode" and "--session" in args:
        return args[args.index("--session") + 1]
    if agent == "copilot":
        for arg in args:
            if arg.startswith("--resume="):
                return arg.split("=", 1)[1]
    return None


def main() -> int:
    agent, args = sys.argv[1], sys.argv[2:]
    if args in (["--version"], ["-V"]):
        print(json.loads((FIXTURES / f"{agent}-write.meta.json").read_text())["version"])
        return 0
    stdin = sys.stdin.read() if agent == "codex" else ""
    record = {"agent": agent, "argv": args, "stdin": stdin, "cwd": os.getcwd(),
              "env": {k: os.environ[k] for k in WATCHED_ENV if k in os.environ}}
    log = os.environ.get("FAKE_AGENT_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")
    resume = resumed_id(agent, args)
    run = os.environ.get("FAKE_AGENT_RUN") or f"{agent}-{'resume' if resume else 'write'}"
    meta = json.loads((FIXTURES / f"{run}.meta.json").read_text())
    if resume is not None and resume != meta["session_id"]:
        print(f"Error: no session found with id {resume}", file=sys.stderr)
        return 1
    sys.stdout.buffer.write((FIXTURES / f"{run}.stdout.jsonl").read_bytes())
    sys.stdout.flush()
    stderr = FIXTURES / f"{run}.stderr.txt"
    if stderr.exists():
        sys.stderr.buffer.write(stderr.read_bytes())
    hang = os.environ.get("FAKE_AGENT_HANG")
    if hang:
        # "1": exit on the first SIGINT; "2": only abort the turn on the first, exit on
        # the second (copilot does this).
        needed = [int(hang)]

        def interrupted(_signum: int, _frame: object) -> None:
            if log:
                with open(log, "a", encoding="utf-8") as fh:
                    fh.write(json.dumps({"agent": agent, "signal": "SIGINT"}) + "\n")
            needed[0] -= 1
            if needed[0] <= 0:
                sys.exit(130)

        signal.signal(signal.SIGINT, interrupted)
        sys.stdout.flush()
        if log:
            with open(log, "a", encoding="utf-8") as fh:
                fh.write(json.dumps({"agent": agent, "waiting": True}) + "\n")
        while True:
            time.sleep(0.05)
    return int(meta.get("exit_code", 0))


if __name__ == "__main__":
    sys.exit(main())
