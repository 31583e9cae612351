"""The first hour with aura: the prompt as an argument, `aura config`, the default executor
(AURA_EXECUTOR, then the config), the npx notice, `--executor-path` saying what it did,
and the help (grouped, summaries whole, `aura help run`, `aura version`)."""

from __future__ import annotations

import json
import os
import shutil
import sys
import tomllib
from pathlib import Path

import pytest

from tests.conftest import run_aura


def _latest(env: dict[str, str] | None = None) -> dict:
    done = run_aura("session", "latest", "--json", env=env)
    assert done.returncode == 0, done.stderr
    return json.JSONDecoder().raw_decode(done.stdout)[0]


def _user_messages(out: str) -> list[str]:
    entries = [json.loads(line) for line in out.splitlines()]
    return [e["text"] for e in entries if e.get("kind") == "user_message"]


# -- the prompt ---------------------------------------------------------------------------

def test_the_prompt_is_an_argument() -> None:
    done = run_aura("run", "-e", "custom", "--base-command", "cat", "--json",
                    "fix the failing test")
    assert done.returncode == 0, done.stderr
    assert _user_messages(done.stdout) == ["fix the failing test"]


def test_the_prompt_twice_is_a_one_line_usage_error() -> None:
    done = run_aura("run", "-e", "custom", "--base-command", "cat", "-p", "one", "two")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "aura: error: give the prompt once: as the argument or with --prompt, not both"]
    assert run_aura("session", "list", "--json").stdout.strip() in ("", "[]")


@pytest.mark.parametrize("stdin", ["", "\n\n", "  \n"])
def test_an_empty_stdin_prompt_says_it_was_empty(stdin: str) -> None:
    done = run_aura("run", "-e", "custom", "--base-command", "cat", "-p", "-", input=stdin)
    assert done.returncode == 2
    assert "the prompt read from stdin (--prompt -) was empty" in done.stderr


def test_the_prompt_from_stdin_still_works() -> None:
    done = run_aura("run", "-e", "custom", "--base-command", "cat", "--json", "-p", "-",
                    input="from stdin\n")
    assert done.returncode == 0, done.stderr
    assert _user_messages(done.stdout) == ["from stdin"]


def test_task_add_takes_the_prompt_as_an_argument() -> None:
    done = run_aura("task", "add", "-e", "custom", "--base-command", "cat", "queued work")
    assert done.returncode == 0, done.stderr
    listed = json.loads(run_aura("task", "list", "--json").stdout)
    assert [row["prompt"] for row in listed] == ["queued work"]
    both = run_aura("task", "add", "-e", "custom", "-p", "a", "b")
    assert both.returncode == 2 and "not both" in both.stderr


# -- aura config ----------------------------------------------------------------------------

def test_config_set_get_unset_list_path(aura_home: Path) -> None:
    assert run_aura("config", "path").stdout.strip() == str(aura_home / "config.toml")
    assert run_aura("config", "set", "executor", "cursor").returncode == 0  # an alias
    assert run_aura("config", "set", "max_parallel", "3").returncode == 0
    assert run_aura("config", "set", "models.claude", "opus").returncode == 0
    assert run_aura("config", "set", "executors.ollama.endpoint",
                    "http://127.0.0.1:9/v1").returncode == 0
    assert run_aura("config", "set", "executors.codex.search", "true").returncode == 0
    stored = tomllib.loads((aura_home / "config.toml").read_text())
    assert stored == {"executor": "cursor-agent", "max_parallel": 3,
                      "models": {"claude": "opus"},
                      "executors": {"ollama": {"endpoint": "http://127.0.0.1:9/v1"},
                                    "codex": {"search": True}}}
    assert run_aura("config", "get", "max_parallel").stdout == "3\n"
    assert run_aura("config", "get", "executors.codex.search").stdout == "true\n"
    listed = run_aura("config", "list").stdout.splitlines()
    assert "models.claude = opus" in listed and "executor = cursor-agent" in listed
    assert run_aura("config", "unset", "models.claude").returncode == 0
    assert "models" not in tomllib.loads((aura_home / "config.toml").read_text())
    missing = run_aura("config", "get", "models.claude")
    assert missing.returncode == 1 and "models.claude is not set" in missing.stderr
    assert run_aura("config", "unset", "models.claude").returncode == 1
    assert run_aura("config", "unset", "executors.codex.search").returncode == 0
    stored = tomllib.loads((aura_home / "config.toml").read_text())
    assert stored["executors"] == {"ollama": {"endpoint": "http://127.0.0.1:9/v1"}}


def test_config_path_follows_aura_config(tmp_path: Path) -> None:
    elsewhere = tmp_path / "other.toml"
    done = run_aura("config", "path", env={"AURA_CONFIG": str(elsewhere)})
    assert done.stdout.strip() == str(elsewhere)


@pytest.mark.parametrize(("key", "value", "message"), [
    ("max_parallel", "many", "max_parallel must be a whole number"),
    ("max_parallel", "0", "max_parallel must be a whole number ≥ 1"),
    ("executor", "nope", "unknown executor 'nope'"),
    ("models.nope", "x", "unknown executor 'nope'"),
    ("executor_paths", "3", "[executor_paths] must be a table"),
    ("a..b", "1", "is not a config key"),
    ("executor", "", "executor must not be empty"),
])
def test_config_set_refuses_bad_values_and_keeps_the_file(
        aura_home: Path, key: str, value: str, message: str) -> None:
    assert run_aura("config", "set", "max_parallel", "2").returncode == 0
    before = (aura_home / "config.toml").read_text()
    done = run_aura("config", "set", key, value)
    assert done.returncode != 0
    assert len(done.stderr.strip().splitlines()) == 1 and message in done.stderr
    assert (aura_home / "config.toml").read_text() == before


def test_config_set_over_a_table_or_through_a_value_is_refused(aura_home: Path) -> None:
    assert run_aura("config", "set", "executors.codex.sandbox", "read-only").returncode == 0
    through = run_aura("config", "set", "executors.codex.sandbox.x", "1")
    assert through.returncode == 1 and "is a value, not a table" in through.stderr
    over = run_aura("config", "set", "executors.codex", "1")
    assert over.returncode == 1 and "is a table" in over.stderr


# -- the default executor -------------------------------------------------------------------

def test_the_config_executor_is_the_default(aura_home: Path) -> None:
    assert run_aura("config", "set", "executor", "custom").returncode == 0
    done = run_aura("run", "--base-command", "cat", "--no-tui", "hi")
    assert done.returncode == 0, done.stderr
    assert _latest()["executor"] == "custom"


def test_the_custom_command_is_set_once_in_the_config(aura_home: Path,
                                                      tmp_path: Path) -> None:
    agent = tmp_path / "agent.py"
    agent.write_text("import os\nprint('told: ' + os.environ['AURA_PROMPT'])\n")
    assert run_aura("config", "set", "executor", "custom").returncode == 0
    assert run_aura("config", "set", "executors.custom.base_command",
                    f"{sys.executable} {agent}").returncode == 0
    done = run_aura("run", "--no-tui", "hi there")
    assert done.returncode == 0, done.stderr
    assert "told: hi there" in done.stdout
    given = run_aura("run", "--no-tui", "--base-command", "echo flag wins", "x")
    assert "flag wins" in given.stdout  # --base-command still wins over the config


def test_aura_executor_wins_over_the_config(aura_home: Path) -> None:
    (aura_home / "config.toml").write_text('executor = "claude"\n')
    env = {"AURA_EXECUTOR": "custom"}
    done = run_aura("run", "--base-command", "cat", "--no-tui", "hi", env=env)
    assert done.returncode == 0, done.stderr
    assert _latest()["executor"] == "custom"
    bad = run_aura("run", "--base-command", "cat", "hi", env={"AURA_EXECUTOR": "bogus"})
    assert bad.returncode == 2
    assert "AURA_EXECUTOR: unknown executor 'bogus'" in bad.stderr


def test_the_config_model_of_an_executor_is_used(aura_home: Path) -> None:
    assert run_aura("config", "set", "models.custom", "tiny-1").returncode == 0
    done = run_aura("run", "-e", "custom", "--base-command", "cat", "--no-tui", "hi")
    assert done.returncode == 0, done.stderr
    assert _latest()["model"] == "tiny-1"


# -- npx and --executor-path ----------------------------------------------------------------

def test_a_run_through_npx_says_so_in_one_line(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    npx = bin_dir / "npx"
    npx.write_text("#!/bin/sh\nexit 0\n")
    npx.chmod(0o755)
    path = os.pathsep.join([str(bin_dir), "/usr/bin", "/bin"])
    if shutil.which("codex", path=path):
        pytest.skip("codex is installed in /usr/bin or /bin")
    done = run_aura("run", "-e", "codex", "--yolo", "--json", "hi", env={"PATH": path})
    systems = [json.loads(line)["text"] for line in done.stdout.splitlines()
               if json.loads(line).get("kind") == "system"]
    assert systems[0] == ("codex not found on PATH; running it through "
                          "`npx -y @openai/codex`, which downloads the package")


def test_a_found_binary_gets_no_npx_line(tmp_path: Path) -> None:
    done = run_aura("run", "-e", "custom", "--base-command", "cat", "--json", "hi")
    assert "npx" not in done.stdout


def test_executor_path_says_it_remembered(aura_home: Path) -> None:
    done = run_aura("run", "-e", "custom", "--base-command", "cat", "--no-tui",
                    "--executor-path", f"claude={sys.executable}", "hi")
    assert done.returncode == 0, done.stderr
    said = [line for line in done.stderr.splitlines() if "remembered" in line]
    assert said == [f"[aura] remembered claude = {sys.executable} in "
                    f"{aura_home / 'config.toml'} (`aura config unset "
                    "executor_paths.claude` forgets it)"]
    assert run_aura("config", "get", "executor_paths.claude").stdout.strip() == \
        sys.executable


# -- help -------------------------------------------------------------------------------

def test_root_help_groups_commands_and_cuts_no_summary() -> None:
    done = run_aura("--help", env={"COLUMNS": "80"})
    assert done.returncode == 0
    text = done.stdout
    headings = [line for line in text.splitlines() if line.endswith("commands:")]
    assert headings == ["Core commands:", "Review commands:", "Remote commands:",
                        "Setup commands:"]
    assert "..." not in text.split("Options:")[1] and "Other commands" not in text
    core = text.split("Core commands:")[1].split("Review commands:")[0]
    assert all(f"  {name} " in core for name in ("run", "tui", "session", "task"))
    setup = text.split("Setup commands:")[1]
    assert "  config " in setup and "  version " in setup


@pytest.mark.parametrize("group", ["session", "workspace", "board"])
def test_group_help_has_examples_and_no_cut_summary(group: str) -> None:
    text = run_aura(group, "-h").stdout
    assert "EXAMPLES" in text and f"aura {group}" in text.split("EXAMPLES")[1]
    assert "..." not in text.split("Commands:")[-1]


def test_run_help_has_examples() -> None:
    text = run_aura("run", "-h").stdout
    assert "Usage: aura run [OPTIONS] [PROMPT]" in text
    assert "aura run 'fix the failing test'" in text.split("EXAMPLES")[1]


@pytest.mark.parametrize("words", [["run"], ["session", "list"], ["config", "set"]])
def test_aura_help_is_the_commands_own_help(words: list[str]) -> None:
    assert run_aura("help", *words).stdout == run_aura(*words, "-h").stdout


def test_aura_version_works() -> None:
    from aura import __version__

    assert run_aura("version").stdout == f"aura {__version__}\n"
    assert run_aura("--version").stdout == run_aura("version").stdout


@pytest.mark.parametrize("flag", ["-h", "--help"])
def test_aura_help_takes_a_help_flag_as_a_word(flag: str) -> None:
    run_help = run_aura("run", "-h").stdout
    assert run_aura("help", "run", flag).stdout == run_help
    assert run_aura("help", flag, "run").stdout == run_help
    own = run_aura("help", flag)
    assert own.returncode == 0 and own.stdout.startswith("Usage: aura help")


def test_run_has_no_dash_f_and_session_show_follows_with_it() -> None:
    done = run_aura("run", "-e", "custom", "--base-command", "true", "-f", "x")
    assert done.returncode == 2 and "No such option '-f'" in done.stderr
    assert "--force" in run_aura("run", "-h").stdout  # cursor-agent's flag, long form only
    ran = run_aura("run", "-e", "custom", "--base-command", "echo hi", "--no-tui", "x")
    assert ran.returncode == 0, ran.stderr
    sid = _latest()["id"]
    followed = run_aura("session", "show", sid[:8], "-f")
    assert followed.returncode == 0, followed.stderr
    assert "hi" in followed.stdout
