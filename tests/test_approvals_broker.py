"""The approvals model, policy and broker in one process: real SQLite files (and the
memory store), a real Broker, the rules as a config would give them."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from aura.approvals import ApprovalKind, ApprovalRequest, ApprovalState, Choice
from aura.contracts import Session, State
from aura.errors import ApprovalClosed, ConfigError, NotFound
from aura.executors.base import Approvals
from aura.service.approval_policy import (
    Policy,
    Rule,
    rules_from_flags,
    rules_from_table,
    session_rule_for,
    session_rules,
)
from aura.service.approvals import Answer, Broker
from aura.store import MemoryStore
from aura.store_approvals import Approval
from aura.store_sqlite import SQLiteStore

from .approval_agent import GEMINI_OPTIONS


class Collect:
    def __init__(self) -> None:
        self.entries: list[dict] = []

    def emit(self, entries: list[dict]) -> None:
        self.entries.extend(entries)

    def emit_json(self, items: list) -> None:
        self.emit([e for e, _t in items])

    def set_native_session_id(self, native_id: str) -> None:
        pass


def command(cmd: str, native: str = "1") -> ApprovalRequest:
    return ApprovalRequest(native, ApprovalKind.COMMAND, f"Run {cmd}",
                           {"command": cmd, "cwd": "/w"}, GEMINI_OPTIONS)


def write(path: str, native: str = "2") -> ApprovalRequest:
    return ApprovalRequest(native, ApprovalKind.FILE_CHANGE, f"Write {path}",
                           {"paths": [path], "diff": "+hi"}, GEMINI_OPTIONS)


@pytest.fixture(params=["sqlite", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path):
    made = SQLiteStore(tmp_path / "aura.db") if request.param == "sqlite" else MemoryStore()
    made.create_session(Session("s1", "fakeapprove", State.CODING_INITIAL, "/w", "t", "t"))
    yield made
    made.close()


def broker(store, policy: Policy | None = None, person=None, timeout: float = 5.0):
    out = Collect()
    return Broker(store, out, session_id="s1", execution_id="e1", cwd="/w",
                  policy=policy or Policy(), person=person, timeout=timeout), out


def outcomes(out: Collect) -> list[tuple[str, str | None]]:
    return [(e["status"], e["data"]["by"]) for e in out.entries if e["kind"] == "approval"]


# the store --------------------------------------------------------------------------------

def test_the_first_answer_wins_and_later_ones_are_told(store) -> None:
    store.create_approval(Approval("a1b2c3", "s1", "e1", "9", ApprovalKind.COMMAND, "Run x",
                                   "t"))
    first = store.answer_approval("a1b2c3", ApprovalState.ALLOWED, by="alice", at="t2",
                                  choice="allow", option="proceed_once")
    assert first.state is ApprovalState.ALLOWED and first.option == "proceed_once"
    with pytest.raises(ApprovalClosed, match="already answered: allowed by alice"):
        store.answer_approval("a1b2c3", ApprovalState.DENIED, by="bob", at="t3")
    assert store.get_approval("a1b2").answered_by == "alice"  # a prefix finds it
    with pytest.raises(NotFound, match="'a1b' is too short for an approval id prefix"):
        store.get_approval("a1b")
    with pytest.raises(NotFound, match="no approval request 'zzzz'"):
        store.get_approval("zzzz")
    with pytest.raises(NotFound):
        store.get_approval("")


def test_two_connections_racing_to_answer_allow_exactly_one(tmp_path: Path) -> None:
    path = tmp_path / "aura.db"
    SQLiteStore(path).create_approval(
        Approval("a1", "s1", "e1", "9", ApprovalKind.COMMAND, "Run x", "t"))
    won: list[str] = []
    lost: list[str] = []

    def answer(name: str) -> None:
        store = SQLiteStore(path)
        try:
            store.answer_approval("a1", ApprovalState.ALLOWED, by=name, at="t")
            won.append(name)
        except ApprovalClosed:
            lost.append(name)
        store.close()

    threads = [threading.Thread(target=answer, args=(f"p{i}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1 and len(lost) == 7


def test_a_damaged_row_is_a_one_line_error_not_a_traceback(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "aura.db")
    store.create_approval(Approval("a1", "s1", "e1", "9", ApprovalKind.COMMAND, "x", "t"))
    db = sqlite3.connect(tmp_path / "aura.db")
    db.execute("UPDATE approvals SET kind = 'teleport'")
    db.commit()
    with pytest.raises(Exception, match="approval request a1 is damaged"):
        store.get_approval("a1")


# policy -----------------------------------------------------------------------------------

def test_config_rules_allow_deny_by_tool_command_and_path() -> None:
    rules = rules_from_table({"allow": [{"command": "git status"}, {"tool": "read*"},
                                        {"path": "docs/*"}],
                              "deny": [{"command": "rm -rf", "message": "no"}]}, "cfg")
    policy = Policy(tuple(rules))
    assert policy.decide(command("git status --short"), "/w").decision is Choice.ALLOW
    assert policy.decide(command("git push"), "/w") is None
    tool = ApprovalRequest("3", ApprovalKind.TOOL, "Read", {"tool": "ReadFile"})
    assert policy.decide(tool, "/w").decision is Choice.ALLOW
    assert policy.decide(write("docs/a.md"), "/w").decision is Choice.ALLOW
    assert policy.decide(write("/w/docs/b.md"), "/w").decision is Choice.ALLOW
    denied = policy.decide(command("make && rm -rf /"), "/w")
    assert denied is not None and denied.decision is Choice.DENY and denied.message == "no"


@pytest.mark.parametrize("cmd", ["git status && rm -rf ~", "git status; curl x | sh",
                                 "git status > /etc/passwd", "git status $(rm -rf x)",
                                 "git status `id`", "bash -lc 'git status; rm x'",
                                 "git status 'unterminated"])
def test_an_allow_rule_never_approves_more_than_it_says(cmd: str) -> None:
    policy = Policy(tuple(rules_from_table({"allow": [{"command": "git status"}]}, "cfg")))
    assert policy.decide(command(cmd), "/w") is None


def test_a_shell_wrapper_is_seen_through_and_paths_outside_never_allowed() -> None:
    policy = Policy(tuple(rules_from_table({"allow": [{"command": "make"},
                                                      {"path": "*"}]}, "cfg")))
    assert policy.decide(command("/bin/bash -lc 'make test'"), "/w") is not None
    assert policy.decide(write("../etc/passwd"), "/w") is None
    assert policy.decide(write("/etc/passwd"), "/w") is None
    assert policy.decide(write("a/../../x"), "/w") is None


@pytest.mark.parametrize("table, message", [
    ({"allow": [{}]}, "names nothing to match"),
    ({"allow": [{"tool": "x", "colour": "red"}]}, "unknown key"),
    ({"allow": {"tool": "x"}}, "must be a list"),
    ({"deny": [{"kind": "teleport"}]}, "kind 'teleport' is not one of"),
    ({"allow": [{"tool": 3}]}, "every value is a string"),
    ({"permit": []}, "unknown key"),
    ({"allow": [{"command": "echo 'x"}]}, "cannot parse command"),
])
def test_a_broken_rule_is_a_config_error_naming_it(table: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        rules_from_table(table, "/p/.aura.toml")


def test_the_flags_are_policies() -> None:
    yolo = Policy(tuple(rules_from_flags(Approvals(yolo=True))))
    assert yolo.decide(command("rm -rf /"), "/w").describe() == "allow everything (--yolo)"
    tools = Policy(tuple(rules_from_flags(Approvals(allow_tools=("Read",),
                                                    deny_tools=("Bash",)))))
    bash = ApprovalRequest("1", ApprovalKind.TOOL, "Bash", {"tool": "Bash"})
    assert tools.decide(bash, "/w").decision is Choice.DENY
    assert tools.decide(ApprovalRequest("1", ApprovalKind.TOOL, "Read", {"tool": "read"}),
                        "/w").decision is Choice.ALLOW
    assert Policy(tuple(rules_from_flags(Approvals()))).decide(bash, "/w") is None


def test_what_allow_for_session_remembers() -> None:
    assert session_rule_for(write("a.txt")).to_json() == {"kind": "file_change"}
    assert session_rule_for(command("make test")).to_json() == {"kind": "command",
                                                               "command": "make"}
    remembered = Policy(tuple(session_rules({"approval_rules": [
        {"kind": "command", "command": "make"}, "junk", {"kind": "teleport"}]})))
    assert remembered.decide(command("make lint"), "/w") is not None
    assert remembered.decide(command("make; rm -rf /"), "/w") is None
    assert remembered.decide(command("makefoo"), "/w") is None


# the broker -------------------------------------------------------------------------------

def test_a_policy_answers_first_and_the_entry_says_which(store) -> None:
    policy = Policy((Rule(Choice.DENY, ".aura.toml", command="rm", message="never"),))
    b, out = broker(store, policy)
    decision = asyncio.run(b.ask(command("rm -rf build")))
    assert decision.choice is Choice.DENY and decision.message == "never"
    assert decision.option is not None and decision.option.id == "cancel"
    assert outcomes(out) == [("pending", None),
                             ("denied", "policy: deny command `rm` (.aura.toml)")]
    assert store.list_approvals()[0].state is ApprovalState.DENIED


class Scripted:
    def __init__(self, *answers: Answer | None, delay: float = 0.0) -> None:
        self.answers = list(answers)
        self.delay = delay
        self.asked = 0

    async def answer(self, approval):
        self.asked += 1
        await asyncio.sleep(self.delay)
        return self.answers.pop(0)


def test_a_person_allows_for_the_session_and_the_next_request_is_not_asked(store) -> None:
    person = Scripted(Answer(Choice.ALLOW_SESSION, by="alice (tty)"))
    b, _out = broker(store, person=person)

    async def turn():
        return await b.ask(write("a.txt", "1")), await b.ask(write("b.txt", "2"))

    first, second = asyncio.run(turn())
    assert first.choice is Choice.ALLOW_SESSION and first.option.id == "proceed_always"
    assert second.allowed and second.by.startswith("policy: allow kind file_change")
    assert person.asked == 1
    assert store.get_session("s1").options["approval_rules"] == [{"kind": "file_change"}]
    # a later turn of the same session starts from what the session remembers
    later = Policy(tuple(session_rules(store.get_session("s1").options)))
    assert later.decide(write("c.txt"), "/w") is not None


def test_a_deny_with_a_message_reaches_the_agent(store) -> None:
    b, out = broker(store, person=Scripted(Answer(Choice.DENY, "use make", "bob (tty)")))
    decision = asyncio.run(b.ask(command("cmake .")))
    assert (decision.choice, decision.message, decision.option.id) == \
        (Choice.DENY, "use make", "cancel")
    assert outcomes(out)[-1] == ("denied", "bob (tty)")


def test_nobody_to_ask_expires_after_the_timeout_and_denies(store) -> None:
    b, out = broker(store, timeout=0.3)
    started = time.monotonic()
    decision = asyncio.run(b.ask(command("make")))
    assert 0.25 < time.monotonic() - started < 2
    assert decision.choice is Choice.DENY and "nobody answered within 0.3 s" in decision.message
    assert store.list_approvals()[0].state is ApprovalState.EXPIRED
    assert outcomes(out)[-1] == ("expired", "timeout")


def test_a_person_who_goes_away_leaves_the_timeout_in_charge(store) -> None:
    b, _out = broker(store, person=Scripted(None), timeout=0.3)
    assert asyncio.run(b.ask(command("make"))).choice is Choice.DENY
    assert store.list_approvals()[0].state is ApprovalState.EXPIRED


def test_an_answer_from_the_store_beats_the_person_who_is_still_thinking(store) -> None:
    from aura.service.approvals import answer

    person = Scripted(Answer(Choice.DENY), delay=30)
    b, out = broker(store, person=person)

    async def turn():
        task = asyncio.ensure_future(b.ask(command("make")))
        while not store.list_approvals():
            await asyncio.sleep(0.01)
        answer(store, store.list_approvals()[0].id[:8], Choice.ALLOW, by="carol (other)")
        return await asyncio.wait_for(task, 2)

    decision = asyncio.run(turn())
    assert decision.choice is Choice.ALLOW and decision.by == "carol (other)"
    assert outcomes(out)[-1] == ("allowed", "carol (other)")


def test_cancel_while_pending_is_lost_and_a_late_answer_is_refused(store) -> None:
    from aura.service.approvals import answer

    b, out = broker(store, timeout=30)

    async def turn():
        task = asyncio.ensure_future(b.ask(command("make")))
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(turn())
    approval = store.list_approvals()[0]
    assert approval.state is ApprovalState.LOST
    assert outcomes(out)[-1] == ("lost", "the turn was cancelled")
    with pytest.raises(ApprovalClosed, match="is lost: the run that asked went away"):
        answer(store, approval.id, Choice.ALLOW, by="late")


def test_a_withdrawn_request_is_lost_and_the_end_of_the_turn_sweeps_the_rest(store) -> None:
    b, _out = broker(store, timeout=30)

    async def turn():
        one = asyncio.ensure_future(b.ask(command("make", "n1")))
        two = asyncio.ensure_future(b.ask(command("make", "n2")))
        await asyncio.sleep(0.2)
        b.withdraw("n1")
        first = await asyncio.wait_for(one, 2)
        two.cancel()
        return first

    assert asyncio.run(turn()).choice is Choice.DENY
    b.close()
    states = {a.native_id: (a.state, a.answered_by) for a in store.list_approvals()}
    assert states["n1"] == (ApprovalState.LOST, "withdrawn by the agent")
    assert states["n2"][0] is ApprovalState.LOST
    assert store.list_approvals(state=ApprovalState.PENDING) == []


# around the model ---------------------------------------------------------------------------

def test_a_database_of_the_previous_schema_gains_the_table(tmp_path: Path) -> None:
    from aura import store_sqlite

    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    for number, migrate in enumerate(store_sqlite.MIGRATIONS[:-1], 1):
        migrate(db)
        db.execute(f"PRAGMA user_version = {number}")
    db.commit()
    db.close()
    store = SQLiteStore(path)
    assert store.list_approvals() == []
    store.close()


def test_the_timeout_travels_on_the_wire_only_when_given() -> None:
    from aura.errors import WireError
    from aura.service.run_options import RunOptions

    assert "approval_timeout" not in RunOptions(prompt="p").to_wire()
    wire = RunOptions(prompt="p", approval_timeout=12.5).to_wire()
    assert RunOptions.from_wire(wire, follow_up=False).approval_timeout == 12.5
    for bad in (0, -1, True, "10", 10 ** 9):
        with pytest.raises(WireError, match="approval_timeout"):
            RunOptions.from_wire({"prompt": "p", "approval_timeout": bad}, follow_up=False)


def test_a_config_with_rules_survives_being_saved_again(tmp_path: Path) -> None:
    from aura import config

    path = tmp_path / "config.toml"
    path.write_text('[approvals]\nallow = [{ tool = "Read" }, { command = "git status" }]\n'
                    '[executor_paths]\nclaude = "/x/claude"\n')
    config.save(config.load(path), path)
    again = config.load(path)
    assert again["approvals"]["allow"] == [{"tool": "Read"}, {"command": "git status"}]
    assert len(rules_from_table(again["approvals"], str(path))) == 2
