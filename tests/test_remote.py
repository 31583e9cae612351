"""Remote workers end to end: a coordinator and two workers as real processes on
127.0.0.1, runs by name and by label, the same history as a local run, follow-ups,
Ctrl-C, the worker's command policy, TLS."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import agent_command, run_aura
from .remote_cluster import Cluster, json_lines, wait_for


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(tmp_path)
    c.start_coordinator()
    c.start_worker("w1", "--labels", "gpu,linux")
    c.start_worker("w2", "--labels", "cpu", "--capacity", "2", flag="--connect")  # old name
    try:
        yield c
    finally:
        c.close()


def _strip(entries: list[dict]) -> list[dict]:
    """Entries without what differs between any two runs (ids, times)."""
    return [{k: v for k, v in e.items() if k not in ("ts", "session", "execution")}
            for e in entries]


def test_run_on_named_worker_and_by_label(cluster: Cluster) -> None:
    workers = {w["name"]: w for w in cluster.workers()}
    assert set(workers) == {"w1", "w2"}
    assert workers["w1"]["state"] == "online" and workers["w1"]["labels"] == ["gpu", "linux"]
    assert workers["w2"]["capacity"] == 2 and "custom" in workers["w2"]["executors"]
    # `aura workers` left the names and labels behind for a TAB after --on.
    tab = cluster.aura(_AURA_COMPLETE="bash_complete", COMP_WORDS="aura run --on ",
                       COMP_CWORD="3")
    assert tab.stdout.split() == ["plain,w1", "plain,w2", "plain,label:cpu", "plain,label:gpu",
                                  "plain,label:linux"]

    done = cluster.run_on("w1", agent_command("lines_agent.py", "50"))
    assert done.returncode == 0, done.stderr
    lines = json_lines(done.stdout)
    summary = lines[-1]
    assert summary["kind"] == "summary" and summary["state"] == "done"
    entries = lines[:-1]
    assert [e["seq"] for e in entries] == list(range(1, len(entries) + 1))
    assert [e["text"] for e in entries if e["kind"] == "assistant_message"] == \
        [f"line {i}" for i in range(1, 51)]
    assert {"kind": "system", "text": "token in env: no"}.items() <= entries[2].items()
    stored = cluster.stored(summary["session"])
    assert stored["executions"][0]["host"] == "w1"
    assert stored["state"] == "done"

    by_label = cluster.run_on("label:cpu", agent_command("lines_agent.py", "3"))
    assert by_label.returncode == 0, by_label.stderr
    session = json_lines(by_label.stdout)[-1]["session"]
    assert cluster.stored(session)["executions"][0]["host"] == "w2"


def test_remote_history_matches_a_local_run(cluster: Cluster, tmp_path: Path) -> None:
    command = agent_command("lines_agent.py", "20")
    # Setup and cleanup scripts make it a staged run: one execution per stage.
    stages = ("--setup", "echo prepared", "--cleanup", "echo tidy")
    remote = cluster.run_on("label:gpu", command, *stages)
    assert remote.returncode == 0, remote.stderr
    session = json_lines(remote.stdout)[-1]["session"]

    local = run_aura("run", "--executor", "custom", "--base-command", command,
                     "--prompt", "go", "--json", *stages, cwd=tmp_path)
    assert local.returncode == 0, local.stderr
    local_session = json_lines(local.stdout)[-1]["session"]
    local_show = json_lines(run_aura("session", "show", local_session, "--json").stdout
                            .replace("\n", " ") + "\n")[0]

    stored = cluster.stored(session)
    assert _strip(stored["entries"]) == _strip(local_show["entries"])
    assert [(t["from"], t["to"], t["reason"]) for t in stored["transitions"]] == \
        [(t["from"], t["to"], t["reason"]) for t in local_show["transitions"]]
    assert [(e["stage"], e["state"], e["exit_code"]) for e in stored["executions"]] == \
        [(e["stage"], e["state"], e["exit_code"]) for e in local_show["executions"]]
    assert [e["stage"] for e in stored["executions"]] == ["setup", "coding_initial", "cleanup"]
    assert {e["host"] for e in stored["executions"]} == {"w1"}
    # Each entry is stored under the execution (stage) that produced it.
    by_id = {e["id"]: e["stage"] for e in stored["executions"]}
    assert all(by_id[e["execution"]] == e["stage"] for e in stored["entries"])
    # The stream the client printed is exactly what the coordinator stored.
    assert json_lines(remote.stdout)[:-1] == stored["entries"]

    # The same history through the protocol.
    via = cluster.aura("session", "show", session[:8], "--coordinator", cluster.url, "--json")
    assert via.returncode == 0, via.stderr
    assert json_lines(via.stdout.replace("\n", " ") + "\n")[0] == stored
    human = cluster.aura("session", "show", session, "--coordinator", cluster.url)
    assert "line 20" in human.stdout and "on w1" in human.stdout
    listed = cluster.aura("session", "list", "--coordinator", cluster.url, "--json")
    assert listed.returncode == 0, listed.stderr
    assert [d["id"] for d in json.loads(listed.stdout)] == [session]
    table = cluster.aura("session", "list", "--coordinator", cluster.url)
    assert session[:8] in table.stdout and "done" in table.stdout


def test_follow_up_on_another_worker_continues_the_session(cluster: Cluster) -> None:
    first = cluster.run_on("w1", agent_command("lines_agent.py", "2"), prompt="one")
    session = json_lines(first.stdout)[-1]["session"]
    again = cluster.aura("run", "--on", "w2", "--coordinator", cluster.url, "--session",
                         session[:8], "--prompt", "two", "--json")
    assert again.returncode == 0, again.stderr
    lines = json_lines(again.stdout)
    assert lines[0]["seq"] == len(json_lines(first.stdout)) and \
        lines[0]["to"] == "coding_follow_up"
    stored = cluster.stored(session)
    assert [e["seq"] for e in stored["entries"]] == list(range(1, len(stored["entries"]) + 1))
    assert [e["host"] for e in stored["executions"]] == ["w1", "w2"]
    assert [e["stage"] for e in stored["executions"]] == ["coding_initial", "coding_follow_up"]
    assert stored["state"] == "done"


def test_a_remote_run_says_the_follow_up_that_works_and_latest_finds_it(
        cluster: Cluster) -> None:
    first = cluster.aura("run", "--on", "label:gpu", "--coordinator", cluster.url,
                         "--executor", "custom", "--base-command",
                         agent_command("lines_agent.py", "2"), "--prompt", "one")
    assert first.returncode == 0, first.stderr
    [hint] = [line for line in first.stderr.splitlines() if "follow up:" in line]
    command = hint.split("follow up: ")[1].removesuffix(" '…'")
    # the worker the coordinator picked, not the label; the session through the coordinator
    assert command.startswith(f"aura run --on w1 --coordinator {cluster.url} --session ")
    short = command.rsplit(" ", 1)[1]
    local = cluster.aura("session", "show", short)
    assert local.returncode != 0  # no such session in this machine's store
    latest = cluster.aura("session", "latest", "--coordinator", cluster.url, "--json")
    assert latest.returncode == 0, latest.stderr
    assert json.loads(latest.stdout)["id"].startswith(short)
    again = cluster.aura(*command.split()[1:], "--prompt", "two", "--json")
    assert again.returncode == 0, again.stderr
    assert json_lines(again.stdout)[-1]["session"].startswith(short)
    assert [e["stage"] for e in cluster.stored(short)["executions"]] == \
        ["coding_initial", "coding_follow_up"]


def test_ctrl_c_interrupts_the_remote_agent(cluster: Cluster) -> None:
    client = cluster.aura_bg("run", "--on", "w1", "--coordinator", cluster.url,
                             "--executor", "custom", "--base-command",
                             agent_command("lines_agent.py", "1000", "1", "0.05"),
                             "--prompt", "long", "--no-tui")
    client.wait_log(r"line 3\b")
    client.popen.send_signal(signal.SIGINT)
    assert client.popen.wait(30) == 130
    assert "interrupting the remote agent" in client.log()
    session = wait_for(lambda: cluster.workers() and
                       run_aura("session", "list", "--json",
                                env={"AURA_HOME": str(cluster.coord_home)}).stdout, 10,
                       "session stored")
    assert '"state": "cancelled"' in session


def test_session_show_follows_a_remote_run_through_the_coordinator(
        cluster: Cluster, tmp_path: Path) -> None:
    client = cluster.aura_bg("run", "--on", "w1", "--coordinator", cluster.url,
                             "--executor", "custom", "--base-command",
                             agent_command("lines_agent.py", "40", "1", "0.05"),
                             "--prompt", "watched", "--no-tui")
    client.wait_log(r"line 12\b")  # so that 5 back from the end is past line 1
    newest = wait_for(lambda: json.loads(cluster.aura(
        "session", "list", "--coordinator", cluster.url, "--json").stdout), 10, "listed")
    sid = newest[0]["id"]
    # Another machine (its own home) follows it to the end, from a few entries back.
    other = {"AURA_HOME": str(tmp_path / "laptop")}
    watched = cluster.aura("session", "show", sid[:8], "-f", "--coordinator", cluster.url,
                           "--json", "--tail", "5", **other)
    assert watched.returncode == 0, watched.stderr
    texts = [e.get("text") for e in json_lines(watched.stdout)]
    assert "line 40" in texts and "line 1" not in texts  # the tail, then live to the end
    assert client.popen.wait(30) == 0
    assert f"[aura] session {sid[:8]} done" in watched.stderr
    # A resting session is handed over as stored, with its state.
    again = cluster.aura("session", "show", sid[:8], "-f", "--coordinator", cluster.url,
                         "--kind", "assistant_message", **other)
    assert again.returncode == 0, again.stderr
    assert "is not running (done)" in again.stderr and "line 40" in again.stdout


def test_errors_reach_the_client(cluster: Cluster) -> None:
    unknown = cluster.run_on("nosuch", "true")
    assert unknown.returncode == 1
    assert "no worker named 'nosuch'" in unknown.stderr
    label = cluster.run_on("label:tpu", "true")
    assert label.returncode == 1 and "no online worker with label 'tpu'" in label.stderr
    bad_cwd = cluster.run_on("w1", "true", "--cwd", "/no/such/dir")
    assert bad_cwd.returncode == 2 and "is not a directory" in bad_cwd.stderr
    latest = cluster.aura("run", "--on", "w1", "--coordinator", cluster.url,
                          "--resume-latest", "--prompt", "x")
    assert latest.returncode == 2 and "--resume-latest" in latest.stderr
    failing = cluster.run_on("w1", "sh -c 'echo bye; exit 3'")
    assert failing.returncode == 3
    assert json_lines(failing.stdout)[-1]["state"] == "failed"


def test_worker_without_allow_command_refuses_commands(tmp_path: Path) -> None:
    c = Cluster(tmp_path)
    try:
        c.start_coordinator()
        c.start_worker("safe", allow_command=False)
        # custom is offered for endpoint runs; a command run is refused by the worker.
        assert c.workers()[0]["executors"]["custom"].endswith("(endpoints)")
        refused = c.run_on("safe", "true")
        assert refused.returncode == 1
        assert "refuses --base-command" in refused.stderr
        assert "--allow-command" in refused.stderr
    finally:
        c.close()


def test_no_coordinator_or_token_is_a_usage_error(tmp_path: Path) -> None:
    done = run_aura("run", "--on", "w1", "--prompt", "x")
    assert done.returncode == 2 and "no coordinator" in done.stderr
    done = run_aura("workers", "--coordinator", "ws://127.0.0.1:1")
    assert done.returncode == 2 and "no token" in done.stderr
    done = run_aura("workers", "--coordinator", "ws://127.0.0.1:1", env={"AURA_TOKEN": "x"})
    assert done.returncode == 1 and "cannot reach the coordinator" in done.stderr
    done = run_aura("serve", "--listen", "127.0.0.1:0")
    assert done.returncode == 2 and "no token" in done.stderr


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI to make "
                    "a self-signed certificate")
def test_tls(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True)
    c = Cluster(tmp_path)
    try:
        url = c.start_coordinator("--tls-cert", str(cert), "--tls-key", str(key))
        assert url.startswith("wss://")
        # Without trusting the certificate the handshake fails.
        untrusted = c.aura("workers", "--coordinator", url)
        assert untrusted.returncode == 1 and "certificate" in untrusted.stderr.lower()
        assert "--cafile" in untrusted.stderr
        stranger = c.start_worker("stranger", wait=False)
        assert stranger.popen.wait(30) == 1
        assert "cannot trust the certificate" in stranger.log()
        c.cafile = str(cert)
        c.start_worker("tls1")
        done = c.run_on("tls1", agent_command("lines_agent.py", "5"))
        assert done.returncode == 0, done.stderr
        assert json_lines(done.stdout)[-1]["state"] == "done"
    finally:
        c.close()


def test_a_worker_stopped_with_sigterm_cancels_its_runs_and_reports_them(
        cluster: Cluster) -> None:
    client = cluster.aura_bg("run", "--on", "w2", "--coordinator", cluster.url,
                             "--executor", "custom", "--base-command",
                             agent_command("lines_agent.py", "1000", "1", "0.05"),
                             "--prompt", "long", "--json")
    client.wait_log(r'"text":"line 3"')
    worker = next(p for p in cluster.procs if p.name == "w2")
    assert worker.stop(signal.SIGTERM) == 0
    assert client.popen.wait(30) == 130
    summary = json_lines(client.log())[-1]
    assert summary["state"] == "cancelled"
    stored = cluster.stored(summary["session"])
    assert stored["state"] == "cancelled"
    assert stored["entries"][-1]["to"] == "cancelled"
