#!/usr/bin/env python3
"""A fake claude in the control protocol (``-p --input-format stream-json …``) whose turn
holds until it is steered or interrupted, as research/approvals.md recorded claude do:

- ``control_request initialize`` → success; the first ``user`` line is the prompt: an
  init line (the session id of ``--session-id`` or ``--resume``) and an assistant line
  saying the prompt; a prompt with "hold" in it then waits, any other ends the turn
  (``result`` success);
- another ``user`` line while the turn holds (a steer): folded into the same turn, as
  claude does: an assistant line "steered: TEXT", then the one ``result`` success;
- ``control_request interrupt`` → success, a user line "[Request interrupted by user]",
  ``result`` error_during_execution;
- end of stdin: exit 1 after an ``is_error`` result (as claude does), else 0.

Every line it reads is appended to $FAKE_CLAUDE_LOG as JSON (with the argv first).
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

LOG = os.environ.get("FAKE_CLAUDE_LOG")


def log(item: Any) -> None:
    if LOG:
        with open(LOG, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(item) + "\n")


def say(obj: dict[str, Any]) -> None:
    print(json.dumps(obj), flush=True)


def main() -> int:
    argv = sys.argv[1:]
    log({"argv": argv})
    sid = argv[argv.index("--resume") + 1] if "--resume" in argv else \
        argv[argv.index("--session-id") + 1]
    holding = False
    error = False

    def assistant(text: str) -> None:
        say({"type": "assistant", "session_id": sid, "message": {
            "role": "assistant", "content": [{"type": "text", "text": text}]}})

    def result(subtype: str) -> None:
        nonlocal error, holding
        error = subtype != "success"
        holding = False
        say({"type": "result", "subtype": subtype, "is_error": error, "session_id": sid,
             "result": "" if error else "Done.", "duration_ms": 5, "num_turns": 1})

    started = False
    for line in sys.stdin:
        message = json.loads(line)
        log(message)
        if message.get("type") == "control_request":
            subtype = (message.get("request") or {}).get("subtype")
            say({"type": "control_response", "response": {
                "subtype": "success", "request_id": message.get("request_id"),
                "response": {"commands": []} if subtype == "initialize" else {}}})
            if subtype == "interrupt" and holding:
                say({"type": "user", "session_id": sid, "message": {"role": "user", "content": [
                    {"type": "text", "text": "[Request interrupted by user]"}]}})
                result("error_during_execution")
        elif message.get("type") == "user":
            text = str((message.get("message") or {}).get("content", ""))
            if not started:
                started = True
                say({"type": "system", "subtype": "init", "session_id": sid,
                     "cwd": os.getcwd(), "model": "fake", "tools": []})
                assistant(f"working on: {text}")
                if "hold" in text:
                    holding = True
                else:
                    result("success")
            elif holding:
                assistant(f"steered: {text}")
                result("success")
    return 1 if error else 0


if __name__ == "__main__":
    sys.exit(main())
