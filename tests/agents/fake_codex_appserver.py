#!/usr/bin/env python3
"""A fake ``codex app-server`` that replays one turn of a recorded exchange
(tests/fixtures/agents/approvals/codex-appserver-*.exchange.jsonl, recorded with codex-cli
0.169.0).

    fake_codex_appserver.py --recording FILE --turn K [--log FILE] [--pidfile FILE]
        [--steer] app-server

It expects the client's messages of the recording's prologue (initialize, initialized,
thread/start or thread/resume) and of its K-th turn (turn/start, the approval answers,
turn/interrupt), in order, checks each one's shape the way codex would read it (no
"jsonrpc" member, the recorded thread and turn ids, the recorded approval policy, sandbox
and decision, the recorded prompt), and after each prints the server lines that followed it
in the recording, with the recorded cwd replaced by the client's and the ids of responses
replaced by the client's own. A message that differs ends it with exit code 3 and the reason
on stderr. ``--steer`` also answers ``turn/steer`` as codex does (not recorded: the reply and
the user message item follow research/approvals.md).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any


def fail(why: str) -> None:
    sys.stderr.write(f"fake codex: {why}\n")
    sys.stderr.flush()
    sys.exit(3)


def steps_of(path: str) -> list[tuple[dict[str, Any], list[str]]]:
    """(client message, the server lines that followed it) in recorded order."""
    steps: list[tuple[dict[str, Any], list[str]]] = []
    with open(path) as f:
        for line in f:
            step = json.loads(line)
            if step["dir"] == "client->agent":
                steps.append((step["msg"], []))
            elif steps:
                steps[-1][1].append(step["raw"].rstrip("\n"))
    return steps


def choose(steps: list[tuple[dict[str, Any], list[str]]], turn: int
           ) -> list[tuple[dict[str, Any], list[str]]]:
    prologue = [s for s in steps if s[0].get("method") in
                ("initialize", "initialized", "thread/start", "thread/resume")]
    starts = [i for i, s in enumerate(steps) if s[0].get("method") == "turn/start"]
    if turn >= len(starts):
        fail(f"the recording has {len(starts)} turns, not {turn + 1}")
    end = starts[turn + 1] if turn + 1 < len(starts) else len(steps)
    return prologue + steps[starts[turn]:end]


class Replay:
    def __init__(self, steps: list[tuple[dict[str, Any], list[str]]], log: str | None,
                 steer: bool) -> None:
        self.steps = steps
        self.log = open(log, "a") if log else None  # noqa: SIM115 (open for the whole run)
        self.steer = steer
        self.ids: dict[Any, Any] = {}  # recorded client id → the client's id
        self.cwd = ""
        self.recorded_cwd = ""
        self.thread = ""
        self.turn = ""
        for msg, _lines in steps:
            params = msg.get("params") or {}
            if msg.get("method") in ("thread/start", "thread/resume"):
                self.recorded_cwd = params["cwd"]
            if msg.get("method") == "turn/start":
                self.thread = params["threadId"]

    def read(self) -> dict[str, Any] | None:
        line = sys.stdin.readline()
        if not line:
            return None
        if self.log:
            self.log.write(line)
            self.log.flush()
        try:
            msg = json.loads(line)
        except ValueError:
            fail(f"not JSON: {line!r}")
        if not isinstance(msg, dict):
            fail(f"not an object: {line!r}")
        assert isinstance(msg, dict)
        if "jsonrpc" in msg:
            fail(f"codex's dialect has no jsonrpc member: {line!r}")
        return msg

    def write(self, raw: str) -> None:
        if self.recorded_cwd and self.cwd:
            raw = raw.replace(self.recorded_cwd, json.dumps(self.cwd)[1:-1])
        msg = json.loads(raw)
        if "method" not in msg and msg.get("id") in self.ids:
            msg["id"] = self.ids[msg["id"]]
            raw = json.dumps(msg, separators=(",", ":"))
        sys.stdout.write(raw + "\n")
        sys.stdout.flush()

    def check(self, want: dict[str, Any], got: dict[str, Any]) -> None:
        method = want.get("method")
        if got.get("method") != method:
            fail(f"expected {method or 'an answer'}, got {json.dumps(got)}")
        params = got.get("params") or {}
        wanted = want.get("params") or {}
        if method == "initialize" and not isinstance(
                (params.get("clientInfo") or {}).get("name"), str):
            fail("initialize without clientInfo.name")
        if method in ("thread/start", "thread/resume"):
            for key in ("approvalPolicy", "sandbox"):
                if params.get(key) != wanted.get(key):
                    fail(f"{method} {key}={params.get(key)!r}, recorded {wanted.get(key)!r}")
            if not str(params.get("cwd", "")).startswith("/"):
                fail(f"{method} needs an absolute cwd")
            self.cwd = params["cwd"]
        if method == "thread/resume" and params.get("threadId") != wanted["threadId"]:
            fail(f"thread/resume of {params.get('threadId')!r}, recorded {wanted['threadId']}")
        if method == "turn/start":
            text = wanted["input"][0]["text"]
            got_input = params.get("input")
            if params.get("threadId") != self.thread or not isinstance(got_input, list) or \
                    len(got_input) != 1 or got_input[0].get("type") != "text" or \
                    text not in str(got_input[0].get("text")):
                fail(f"turn/start does not match the recording: {json.dumps(params)}")
        if method == "turn/interrupt" and (params.get("threadId") != self.thread or
                                           params.get("turnId") != self.turn):
            fail(f"turn/interrupt of {json.dumps(params)}, running {self.turn}")
        if method is None:
            if got.get("id") != want["id"] or got.get("result") != want["result"]:
                fail(f"answer {json.dumps(got)}, recorded {json.dumps(want)}")
        elif "id" in want:
            if "id" not in got:
                fail(f"{method} must be a request")
            self.ids[want["id"]] = got["id"]
        elif "id" in got:
            fail(f"{method} must be a notification")

    def steered(self, got: dict[str, Any]) -> None:
        params = got.get("params") or {}
        if params.get("threadId") != self.thread or params.get("expectedTurnId") != self.turn:
            fail(f"turn/steer of {json.dumps(params)}, running {self.turn}")
        sys.stdout.write(json.dumps({"id": got["id"], "result": {"turnId": self.turn}}) + "\n")
        item = {"type": "userMessage", "id": "steer-1", "content": params.get("input")}
        for method in ("item/started", "item/completed"):
            sys.stdout.write(json.dumps({"method": method, "params": {
                "item": item, "threadId": self.thread, "turnId": self.turn}}) + "\n")
        sys.stdout.flush()

    def run(self) -> None:
        for want, lines in self.steps:
            while True:
                got = self.read()
                if got is None:
                    return  # the client hung up early: codex exits quietly
                if self.steer and got.get("method") == "turn/steer" and self.turn:
                    self.steered(got)
                    continue
                break
            self.check(want, got)
            for raw in lines:
                if '"turn":{"id":' in raw and want.get("method") == "turn/start" and \
                        '"result"' in raw:
                    self.turn = json.loads(raw)["result"]["turn"]["id"]
                self.write(raw)
        extra = self.read()
        if extra is not None:
            fail(f"nothing more was recorded, got {json.dumps(extra)}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--recording", required=True)
    parser.add_argument("--turn", type=int, default=0)
    parser.add_argument("--log")
    parser.add_argument("--steer", action="store_true")
    parser.add_argument("--pidfile")
    parser.add_argument("rest", nargs="*")
    args = parser.parse_args()
    if args.pidfile:
        with open(args.pidfile, "w") as f:
            f.write(str(os.getpid()))
    if args.rest[:1] != ["app-server"]:
        fail(f"expected the app-server subcommand, got {args.rest}")
    Replay(choose(steps_of(args.recording), args.turn), args.log, args.steer).run()


if __name__ == "__main__":
    main()
