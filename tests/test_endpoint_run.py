"""`aura run` against a real (fake) OpenAI-compatible server on 127.0.0.1: streaming,
follow-ups that resend the conversation, model picking without a terminal, and every way
the server can fail (each one line, non-zero, the session failed, nothing lost)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import TIMEOUT_FACTOR, aura_argv, run_aura
from .openai_server import FakeOpenAI


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


def latest() -> dict[str, Any]:
    result = run_aura("session", "latest", "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def kinds(session: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e for e in session["entries"] if e["kind"] == kind]


def final_reply(session: dict[str, Any]) -> dict[str, Any]:
    finals = [e for e in kinds(session, "assistant_message") if not e.get("delta")]
    assert len(finals) == 1, finals
    return finals[0]


def custom(server: FakeOpenAI, *args: str, prompt: str = "hello there friend",
           **kw: Any) -> subprocess.CompletedProcess:
    return run_aura("run", "--executor", "custom", "--openai-endpoint", server.url,
                    "--prompt", prompt, "--no-tui", *args, **kw)


def test_streams_the_reply_and_stores_usage(server: FakeOpenAI) -> None:
    server.reasoning = "thinking hard"
    result = custom(server, "--model", "beta-model")
    assert result.returncode == 0, result.stderr
    assert "You said: hello there friend\n" in result.stdout
    sent = server.requests[-1]
    assert sent["model"] == "beta-model"
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}
    assert sent["messages"] == [{"role": "user", "content": "hello there friend"}]
    session = latest()
    assert session["state"] == "done"
    assert session["model"] == "beta-model"
    assert final_reply(session)["text"] == "You said: hello there friend"
    deltas = [e["text"] for e in kinds(session, "assistant_message") if e.get("delta")]
    assert "".join(deltas) == "You said: hello there friend"
    thinking = [e for e in kinds(session, "thinking") if not e.get("delta")]
    assert thinking[0]["text"] == "thinking hard"
    assert kinds(session, "usage")[0]["usage"] == {"input_tokens": 11, "output_tokens": 5}
    # `session show` prints the reply once (the streamed pieces are not repeated).
    shown = run_aura("session", "show", session["id"]).stdout
    assert shown.count("You said: hello there friend") == 1


def test_follow_up_resends_the_conversation(server: FakeOpenAI) -> None:
    first = custom(server, "--model", "alpha-model", prompt="my name is Ada")
    assert first.returncode == 0, first.stderr
    session_id = latest()["id"]
    second = run_aura("run", "--session", session_id[:8], "--prompt", "what is my name?",
                      "--no-tui")
    assert second.returncode == 0, second.stderr
    assert server.requests[-1]["model"] == "alpha-model"
    assert server.requests[-1]["messages"] == [
        {"role": "user", "content": "my name is Ada"},
        {"role": "assistant", "content": "You said: my name is Ada"},
        {"role": "user", "content": "what is my name?"},
    ]
    third = run_aura("run", "--resume-latest", "--executor", "custom", "--prompt", "again",
                     "--no-tui")
    assert third.returncode == 0, third.stderr
    assert len(server.requests[-1]["messages"]) == 5
    assert latest()["state"] == "done"


def test_without_a_terminal_the_first_model_is_used_and_said(server: FakeOpenAI) -> None:
    result = custom(server)
    assert result.returncode == 0, result.stderr
    assert "using alpha-model, the first of 3 models" in result.stderr
    session = latest()
    assert session["model"] == "alpha-model"
    system = [e for e in kinds(session, "system") if e.get("model")]
    assert system[0]["model"] == "alpha-model"
    assert server.requests[-1]["model"] == "alpha-model"


def test_no_models_is_an_error_saying_what_to_do(server: FakeOpenAI) -> None:
    server.models = []
    result = run_aura("run", "--executor", "lms", "--openai-endpoint", server.root,
                      "--prompt", "hi", "--no-tui")
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("aura: error")]
    assert len(errors) == 1 and "lms get" in errors[0]
    assert latest()["state"] == "failed"


def assert_refused(result: subprocess.CompletedProcess, *needles: str) -> None:
    """One error line before anything ran: no session was recorded (issue: a server that
    does not even take a connection is checked before a session exists)."""
    assert result.returncode == 1, (result.stdout, result.stderr)
    errors = [line for line in result.stderr.splitlines() if line.startswith("aura: error")]
    assert len(errors) == 1, result.stderr
    for needle in needles:
        assert needle in errors[0], errors[0]
    assert run_aura("session", "latest").returncode == 1


def assert_failed(result: subprocess.CompletedProcess, *needles: str) -> dict[str, Any]:
    assert result.returncode == 1, (result.stdout, result.stderr)
    errors = [line for line in result.stderr.splitlines() if line.startswith("aura: error")]
    assert len(errors) == 1, result.stderr
    for needle in needles:
        assert needle in errors[0], errors[0]
    session = latest()
    assert session["state"] == "failed"
    assert kinds(session, "error"), "an error entry is stored"
    return session


def test_http_500_shows_the_server_message(server: FakeOpenAI) -> None:
    server.mode = "500"
    assert_failed(custom(server, "--model", "m"), "HTTP 500", "model exploded: out of memory")


def test_dropped_stream_keeps_what_arrived(server: FakeOpenAI) -> None:
    server.mode = "drop"
    session = assert_failed(custom(server, "--model", "m"), "closed before the reply")
    reply = final_reply(session)
    assert reply["text"] == "You said: "
    assert reply["incomplete"] is True


def test_malformed_event_keeps_what_arrived(server: FakeOpenAI) -> None:
    server.mode = "garbage"
    session = assert_failed(custom(server, "--model", "m"), "malformed JSON",
                            "{this is not json")
    assert final_reply(session)["text"] == "You said: "


def test_idle_timeout(server: FakeOpenAI, aura_home: Path) -> None:
    server.mode = "slow"
    server.delay = 3
    (aura_home / "config.toml").write_text("[executors.custom]\nidle_timeout = 0.5\n")
    session = assert_failed(custom(server, "--model", "m"), "sent nothing for 0.5 s",
                            "[executors.custom]")
    assert final_reply(session)["text"] == "You "


def test_connection_refused() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = run_aura("run", "--executor", "custom", "--openai-endpoint",
                      f"http://127.0.0.1:{port}/v1", "--model", "m", "--prompt", "hi",
                      "--no-tui")
    assert_refused(result, "connection refused", f"127.0.0.1:{port}")


def test_server_without_stream_options_is_asked_again(server: FakeOpenAI) -> None:
    server.mode = "no_stream_options"
    result = custom(server, "--model", "m")
    assert result.returncode == 0, result.stderr
    assert "stream_options" in server.requests[0]
    assert "stream_options" not in server.requests[1]
    assert final_reply(latest())["text"] == "You said: hello there friend"


def test_api_key_and_params(server: FakeOpenAI) -> None:
    result = custom(server, "--model", "m", "--param", "temperature=0.2",
                    env={"OPENAI_API_KEY": "sk-test"})
    assert result.returncode == 0, result.stderr
    assert server.requests[-1]["_authorization"] == "Bearer sk-test"
    assert server.requests[-1]["temperature"] == 0.2


def test_lms_and_ollama(server: FakeOpenAI) -> None:
    result = run_aura("run", "--executor", "lms", "--openai-endpoint", server.root,
                      "--model", "qwen/qwen3-8b", "--prompt", "hi", "--no-tui")
    assert result.returncode == 0, result.stderr
    assert server.requests[-1]["model"] == "qwen/qwen3-8b"
    # ollama: the server from OLLAMA_HOST, models from /api/tags, no OpenAI key sent.
    result = run_aura("run", "--executor", "ollama", "--prompt", "hi", "--no-tui",
                      env={"OLLAMA_HOST": f"127.0.0.1:{server.port}",
                           "OPENAI_API_KEY": "sk-secret"})
    assert result.returncode == 0, result.stderr
    assert "using alpha-model" in result.stderr
    assert server.requests[-1]["_authorization"] is None
    assert latest()["executor"] == "ollama"


def test_unreachable_ollama_says_how_to_start_it() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = run_aura("run", "--executor", "ollama", "--prompt", "hi", "--no-tui",
                      env={"OLLAMA_HOST": f"127.0.0.1:{port}"})
    assert_refused(result, "ollama serve", "https://ollama.com/download")


def test_custom_without_endpoint_or_terminal_is_a_usage_error() -> None:
    result = run_aura("run", "--executor", "custom", "--prompt", "hi", "--no-tui")
    assert result.returncode == 2
    assert "pass" in result.stderr or "needs --openai-endpoint" in result.stderr
    assert result.stderr.count("\n") == 1
    assert "--openai-endpoint" in result.stderr
    assert run_aura("session", "latest").returncode == 1  # no session was created


def test_custom_with_base_command_is_still_the_command_executor(tmp_path: Path) -> None:
    agent = tmp_path / "agent.py"
    agent.write_text("import os\nprint('agent got', os.environ['AURA_PROMPT'])\n")
    result = run_aura("run", "--executor", "custom", "--prompt", "task", "--no-tui",
                      "--base-command", agent_command_for(agent))
    assert result.returncode == 0, result.stderr
    assert "agent got task" in result.stdout


def agent_command_for(path: Path) -> str:
    import shlex

    return shlex.join([sys.executable, str(path)])


def test_ctrl_c_stops_the_stream_and_cancels(server: FakeOpenAI) -> None:
    server.mode = "slow"
    server.delay = 0.5
    server.reply = " ".join(f"word{i}" for i in range(200))
    proc = subprocess.Popen(aura_argv("run", "--executor", "custom", "--openai-endpoint",
                                      server.url, "--model", "m", "--prompt", "go",
                                      "--json"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL, env=dict(os.environ))
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if '"delta":true' in line and "word1" in line:
                break
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=10 * TIMEOUT_FACTOR)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130
    session = latest()
    assert session["state"] == "cancelled"
    reply = final_reply(session)
    assert reply["text"].startswith("word0 word1")
    assert reply["incomplete"] is True
    assert "word199" not in reply["text"]




def test_run_uses_the_cached_list_until_refreshed(server: FakeOpenAI) -> None:
    assert custom(server).returncode == 0
    server.models = ["newer-model", "alpha-model"]
    cached = custom(server)
    assert "using alpha-model" in cached.stderr
    assert server.model_requests == 1
    fresh = custom(server, "--refresh-model-cache")
    assert fresh.returncode == 0, fresh.stderr
    assert "using newer-model" in fresh.stderr
    assert server.requests[-1]["model"] == "newer-model"
    assert server.model_requests == 2


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl to make a cert")
def test_https_endpoint_verifies_the_certificate(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True,
                   capture_output=True)
    fake = FakeOpenAI()
    fake.tls = (str(cert), str(key))
    with fake:
        assert fake.url.startswith("https://")
        untrusted = custom(fake, "--model", "m")
        assert_failed(untrusted, "TLS certificate is not trusted", "SSL_CERT_FILE")
        trusted = custom(fake, "--model", "m", env={"SSL_CERT_FILE": str(cert)})
        assert trusted.returncode == 0, trusted.stderr
        assert "You said: hello there friend" in trusted.stdout


def test_an_unreachable_endpoint_is_one_line_and_records_no_session() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    for executor in ("lms", "custom"):
        result = run_aura("run", "--executor", executor, "--openai-endpoint",
                          f"http://127.0.0.1:{port}/v1", "--model", "m", "--prompt", "hi",
                          "--no-tui")
        assert result.returncode == 1, result.stderr
        assert result.stderr.count("aura: error:") == 1 and "cannot reach" in result.stderr
        assert "follow up" not in result.stderr
    assert run_aura("session", "latest").returncode == 1  # no session was created
