"""The queue with real processes: `aura queue run` starting detached `aura task start`
runs of a fake agent (tests/agents/queue_agent.py) that logs when it starts and ends.

Checked: a valid order for a chain and a diamond, never more agents at once than
max_parallel (from the agents' own log and from the process table), a failed dependency
blocking its dependents with the reason shown, a scheduler killed with SIGKILL and
restarted neither losing nor repeating a task, and `run --detach` / `session show -f` /
`session cancel`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from aura.liveness import is_alive

from .conftest import TIMEOUT_FACTOR, agent_command, aura_argv, run_aura

pytestmark = pytest.mark.slow


def add(log: Path, name: str, seconds: float = 0.3, *after: str, code: int = 0) -> str:
    args = ["task", "add", "--executor", "custom", "--title", name, "--prompt", name,
            "--base-command", agent_command("queue_agent.py", str(log), name, str(seconds),
                                            str(code))]
    for dep in after:
        args += ["--after", dep]
    result = run_aura(*args)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def events(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def intervals(log: Path) -> dict[str, list[tuple[float, float]]]:
    starts: dict[str, list[float]] = {}
    out: dict[str, list[tuple[float, float]]] = {}
    for e in events(log):
        if e["event"] == "start":
            starts.setdefault(e["name"], []).append(e["t"])
        else:
            out.setdefault(e["name"], []).append((starts[e["name"]].pop(0), e["t"]))
    return out


def max_overlap(spans: list[tuple[float, float]]) -> int:
    points = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans],
                    key=lambda p: (p[0], p[1]))
    now = best = 0
    for _, step in points:
        now += step
        best = max(best, now)
    return best


class ProcessCounter(threading.Thread):
    """Counts live processes whose command line holds ``marker``, as often as it can."""

    def __init__(self, marker: str) -> None:
        super().__init__(daemon=True)
        self.marker = marker.encode()
        self.most = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            count = 0
            for pid in os.listdir("/proc"):
                if not pid.isdigit():
                    continue
                try:
                    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
                except OSError:
                    continue
                if b"queue_agent.py" in cmdline and self.marker in cmdline and \
                        b"aura" not in cmdline.split(b"\0")[1]:
                    count += 1
            self.most = max(self.most, count)
            time.sleep(0.01)


def queue_run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return run_aura("queue", "run", "--poll", "0.05", *args, timeout=timeout)


def test_twenty_tasks_with_a_chain_and_a_diamond_in_order_and_at_most_three(tmp_path: Path
                                                                           ) -> None:
    log = tmp_path / "agents.log"
    ids: dict[str, str] = {}
    edges: list[tuple[str, str]] = []
    previous = None
    for i in range(6):  # a chain c0 → c1 → … → c5
        name = f"c{i}"
        ids[name] = add(log, name, 0.3, *([ids[previous]] if previous else []))
        if previous:
            edges.append((previous, name))
        previous = name
    ids["top"] = add(log, "top", 0.3)  # a diamond top → left, right → bottom
    for side in ("left", "right"):
        ids[side] = add(log, side, 0.3, ids["top"])
        edges.append(("top", side))
    ids["bottom"] = add(log, "bottom", 0.3, ids["left"], ids["right"])
    edges += [("left", "bottom"), ("right", "bottom")]
    for i in range(10):
        ids[f"i{i}"] = add(log, f"i{i}", 0.3)
    assert len(ids) == 20
    counter = ProcessCounter(str(log))
    counter.start()
    result = queue_run("--max-parallel", "3", "--until-idle")
    counter.stop.set()
    counter.join()
    assert result.returncode == 0, result.stderr
    spans = intervals(log)
    assert sorted(spans) == sorted(ids) and all(len(v) == 1 for v in spans.values())
    for before, after in edges:
        assert spans[before][0][1] <= spans[after][0][0], (before, after)
    assert max_overlap([v[0] for v in spans.values()]) <= 3
    assert 1 <= counter.most <= 3
    listed = json.loads(run_aura("task", "list", "--json").stdout)
    assert {t["state"] for t in listed} == {"done"}


def test_a_failed_dependency_blocks_its_dependents_until_released(tmp_path: Path) -> None:
    log = tmp_path / "agents.log"
    a = add(log, "a", 0.1, code=3)
    b = add(log, "b", 0.1, a)
    c = add(log, "c", 0.1, b)
    assert queue_run("-j", "2", "--until-idle").returncode == 0
    listed = {t["session"]: t for t in json.loads(run_aura("task", "list", "--json").stdout)}
    assert listed[a]["state"] == "failed"
    assert listed[b]["status"] == "blocked" and f"dependency {a[:8]} failed" in \
        listed[b]["reason"]
    assert listed[c]["status"] == "blocked" and \
        listed[c]["reason"] == f"dependency {b[:8]} is stuck (dependency {a[:8]} failed)"
    shown = run_aura("task", "list").stdout
    assert f"dependency {a[:8]} failed" in shown
    assert f"dependency {a[:8]} failed" in run_aura("board").stdout
    assert sorted(intervals(log)) == ["a"]  # b and c never ran
    assert run_aura("task", "release", b[:8]).returncode == 0
    assert queue_run("-j", "2", "--until-idle").returncode == 0
    assert sorted(intervals(log)) == ["a", "b", "c"]


def test_a_scheduler_killed_mid_batch_loses_and_repeats_nothing(tmp_path: Path) -> None:
    log = tmp_path / "agents.log"
    names = [f"t{i}" for i in range(8)]
    for name in names:
        add(log, name, 0.6)
    first = subprocess.Popen(aura_argv("queue", "run", "-j", "2", "--poll", "0.05"),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60 * TIMEOUT_FACTOR
    while sum(e["event"] == "start" for e in events(log)) < 3:
        assert time.monotonic() < deadline, "the scheduler started nothing"
        time.sleep(0.02)
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert queue_run("-j", "2", "--until-idle").returncode == 0
    spans = intervals(log)
    assert sorted(spans) == names and all(len(v) == 1 for v in spans.values()), spans
    assert max_overlap([v[0] for v in spans.values()]) <= 2
    listed = json.loads(run_aura("task", "list", "--json").stdout)
    assert {t["state"] for t in listed} == {"done"}


def test_detach_follow_and_cancel(tmp_path: Path) -> None:
    log = tmp_path / "agents.log"
    began = time.monotonic()
    short = run_aura("run", "-d", "--executor", "custom", "--prompt", "short",
                     "--base-command", agent_command("queue_agent.py", str(log), "short",
                                                     "1.0"))
    assert short.returncode == 0 and time.monotonic() - began < 10 * TIMEOUT_FACTOR
    sid = short.stdout.strip()
    assert len(sid) == 36 and "session show" in short.stderr
    followed = run_aura("session", "show", sid[:8], "-f")
    assert followed.returncode == 0, followed.stderr
    assert "working on short" in followed.stdout and "finished short" in followed.stdout
    assert f"session {sid[:8]} done" in followed.stderr

    long = run_aura("run", "--detach", "--executor", "custom", "--prompt", "long",
                    "--base-command", agent_command("queue_agent.py", str(log), "long", "60"))
    lid = long.stdout.strip()
    deadline = time.monotonic() + 30 * TIMEOUT_FACTOR
    while "long" not in intervals_started(log):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    listed = run_aura("session", "list").stdout
    assert f"{lid[:8]}  custom    coding_initial" in listed
    task = json.loads(run_aura("task", "list", "--json").stdout)
    runner = next(t for t in task if t["session"] == lid)["child_pid"]
    assert os.getsid(runner) == runner  # its own session: a closed terminal does not reach it
    agent_pid = next(e["pid"] for e in events(log) if e["name"] == "long")
    cancelled = run_aura("session", "cancel", lid[:8])
    assert cancelled.returncode == 0 and "cancelled" in cancelled.stdout, cancelled.stderr
    with pytest.raises(ProcessLookupError):
        os.kill(agent_pid, 0)
    again = run_aura("session", "cancel", lid[:8])
    assert again.returncode != 0 and "nothing to cancel" in again.stderr


def intervals_started(log: Path) -> set[str]:
    return {e["name"] for e in events(log) if e["event"] == "start"}


def test_cancel_of_a_queued_task_keeps_the_scheduler_off_it(tmp_path: Path) -> None:
    log = tmp_path / "agents.log"
    a = add(log, "a", 0.1)
    assert run_aura("session", "cancel", a[:8]).returncode == 0
    assert queue_run("--until-idle").returncode == 0
    assert not log.exists()
    assert json.loads(run_aura("session", "show", a, "--json").stdout)["state"] == "cancelled"


def test_a_detached_aura_killed_with_sigkill_is_orphaned_and_its_agent_killed(tmp_path: Path
                                                                              ) -> None:
    log = tmp_path / "agents.log"
    sid = run_aura("run", "-d", "--executor", "custom", "--prompt", "long", "--base-command",
                   agent_command("queue_agent.py", str(log), "long", "60")).stdout.strip()
    deadline = time.monotonic() + 30 * TIMEOUT_FACTOR
    while "long" not in intervals_started(log):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    runner = next(t for t in json.loads(run_aura("task", "list", "--json").stdout)
                  if t["session"] == sid)["child_pid"]
    os.kill(runner, signal.SIGKILL)
    agent_pid = next(e["pid"] for e in events(log) if e["name"] == "long")
    deadline = time.monotonic() + 30 * TIMEOUT_FACTOR  # its own wait, not what is left
    while True:  # the agent dies with its aura (PDEATHSIG) or by the next aura's sweep
        shown = json.loads(run_aura("session", "show", sid, "--json").stdout)
        # is_alive: a killed agent re-parented to this test process (a subreaper once an
        # in-process test spawned through aura) stays a zombie until reaped.
        if not is_alive(agent_pid, None) and shown["state"] == "failed":
            break
        assert time.monotonic() < deadline, shown["state"]
        time.sleep(0.1)
    assert shown["executions"][-1]["reason"] == "orphaned"


def test_board_move_starts_a_queued_task(tmp_path: Path) -> None:
    log = tmp_path / "agents.log"
    a = add(log, "moved", 0.1)
    moved = run_aura("board", "move", a[:8], "In progress")
    assert moved.returncode == 0 and moved.stdout.strip() == a, moved.stderr
    followed = run_aura("session", "show", a[:8], "-f")
    assert followed.returncode == 0 and "finished moved" in followed.stdout
    again = run_aura("board", "move", a[:8], "In progress", "--prompt", "more")
    assert again.returncode == 0  # now a follow-up of a finished session, as before


def test_tasks_sent_to_a_label_run_on_that_worker(tmp_path: Path) -> None:
    from .remote_cluster import Cluster, wait_for

    cluster = Cluster(tmp_path)
    try:
        cluster.start_coordinator()
        cluster.start_worker("w1", "--labels", "gpu")
        env = {"AURA_COORDINATOR": cluster.url}
        agent = agent_command("lines_agent.py", "2")
        gpu = cluster.aura("task", "add", "--executor", "custom", "--base-command", agent,
                           "--prompt", "on gpu", "--on", "label:gpu", **env).stdout.strip()
        tpu = cluster.aura("task", "add", "--executor", "custom", "--base-command", agent,
                           "--prompt", "on tpu", "--on", "label:tpu", **env).stdout.strip()
        scheduler = cluster.aura_bg("queue", "run", "--poll", "0.1", name="scheduler", **env)

        def tasks() -> dict[str, dict]:
            listed = cluster.aura("task", "list", "--json", **env)
            return {t["session"]: t for t in json.loads(listed.stdout)}

        wait_for(lambda: tasks()[gpu]["state"] == "done", 60, "the gpu task done")
        assert tasks()[tpu]["reason"] == "no worker with label tpu online"
        scheduler.stop(signal.SIGINT)
        local = json.loads(cluster.aura("session", "show", gpu, "--json", **env).stdout)
        remote = cluster.stored(local["options"]["remote_session"])
        assert remote["executions"][-1]["host"] == "w1" and remote["state"] == "done"
    finally:
        cluster.close()


def test_a_spent_daily_budget_keeps_tasks_waiting_and_refuses_runs(
        tmp_path: Path, aura_home: Path) -> None:
    import shlex

    config = aura_home / "config.toml"
    paid = json.dumps({"kind": "usage", "usage": {"cost_usd": 2.0}})
    spent = run_aura("run", "--executor", "custom", "--prompt", "spend", "--base-command",
                     "sh", "--param", "-c", "--param", f"echo {shlex.quote(paid)}", "--no-tui")
    assert spent.returncode == 0, spent.stderr
    config.write_text("[budgets]\ndaily_usd = 1.5\n")
    log = tmp_path / "agents.log"
    a = add(log, "held", 0.1)
    b = add(log, "after-held", 0.1, a)
    reason = "budget exhausted: daily $2.00 of $1.50"
    assert queue_run("--until-idle").returncode == 0  # returns: nothing can start today
    assert intervals(log) == {}  # the scheduler started neither
    listed = {t["session"]: t for t in json.loads(run_aura("task", "list", "--json").stdout)}
    assert listed[a]["state"] == "queued" and listed[a]["status"] == "waiting"
    assert listed[a]["reason"] == reason and listed[b]["reason"] == reason
    assert reason in run_aura("task", "list").stdout
    assert reason in run_aura("board").stdout
    assert reason in run_aura("board", "--json").stdout
    refused = run_aura("run", "--executor", "custom", "--base-command", "true", "--no-tui",
                       "more")
    assert refused.returncode == 1 and len(refused.stderr.strip().splitlines()) == 1
    assert reason in refused.stderr
    moved = run_aura("board", "move", a[:8], "In progress")
    assert moved.returncode != 0 and reason in moved.stderr
    # the overall budget raised, custom's own one still spent
    config.write_text("[budgets]\ndaily_usd = 10\n[budgets.executors]\ncustom = 1\n")
    listed = {t["session"]: t for t in json.loads(run_aura("task", "list", "--json").stdout)}
    assert listed[a]["reason"] == "budget exhausted: daily $2.00 of $1.00 for custom"
    config.write_text("[budgets]\ndaily_usd = 10\n[budgets.executors]\ncustom = 5\n")
    assert queue_run("--until-idle").returncode == 0
    assert sorted(intervals(log)) == ["after-held", "held"]
