"""Shell completion in the real shells: bash and fish through their scripted completion
entry points, zsh and elvish interactively in tmux (TAB pressed, screen read), for aura
installed three ways: the console script pip writes, aura.pyz on PATH, and aura.pyz renamed
to `aura`. PowerShell runs for real when `pwsh` exists; otherwise its script is checked to be
click's and its request/response protocol is checked against click's."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from aura.contracts import Session, State, Transition
from aura.store_sqlite import SQLiteStore

from . import terminal
from .conftest import ROOT, TIMEOUT_FACTOR, run_aura
from .gitrepo import git_env

__all__ = ["git_env"]  # a fixture, used by name

OLD_ID = "29e45b7a-8c5f-4fa7-9a2e-4d4f71797b0d"
NEW_ID = "ebb0806e-8460-4300-ba54-7c4ca9bcdd50"
INSTALLS = ("pip", "pyz", "pyz-renamed")


@pytest.fixture
def sessions(aura_home: Path) -> list[str]:
    """Two sessions in the real database, the newer one created last: ids newest first."""
    store = SQLiteStore(aura_home / "aura.db")
    for sid, at, prompt in ((OLD_ID, "2026-11-25T10:00:00.000Z", "first task"),
                            (NEW_ID, "2026-11-25T11:00:00.000Z", "second task")):
        store.create_session(Session(id=sid, executor="custom", state=State.QUEUED.value,
                                     cwd=str(aura_home), created_at=at, updated_at=at,
                                     prompt=prompt))
        store.record_transition(Transition(sid, None, State.QUEUED.value, at, "created"))
    store.close()
    return [NEW_ID, OLD_ID]


@pytest.fixture(scope="session")
def pyz_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pyz") / "aura.pyz"
    builder = ROOT / "build_zipapp.py"
    if builder.exists():
        # --from-installed vendors the dependencies installed here: no network in tests.
        result = subprocess.run([sys.executable, str(builder), "--from-installed",
                                 "--output", str(out)], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
    else:
        # The same shape with the stdlib: the aura package and a __main__ in one zip, run
        # by this interpreter (whose site-packages provide the dependencies).
        with zipfile.ZipFile(out, "w") as zf:
            for path in sorted((ROOT / "aura").rglob("*.py")):
                zf.write(path, path.relative_to(ROOT).as_posix())
            zf.writestr("__main__.py", "from aura.cli.app import main\nmain()\n")
        data = out.read_bytes()
        out.write_bytes(f"#!{sys.executable}\n".encode() + data)
    out.chmod(0o755)
    return out


PIP_SCRIPT = """\
#!{python}
# -*- coding: utf-8 -*-
import re
import sys
from aura.cli.app import main
if __name__ == "__main__":
    sys.argv[0] = re.sub(r"(-script\\.pyw|\\.exe)?$", "", sys.argv[0])
    sys.exit(main())
"""


class Install:
    """aura on PATH one way; ``prog`` is the command name the user types."""

    def __init__(self, kind: str, tmp_path: Path, pyz: Path) -> None:
        self.bin = tmp_path / f"bin-{kind}"
        self.bin.mkdir()
        self.home = tmp_path / "home"
        self.home.mkdir(exist_ok=True)
        if kind == "pip":
            # The console script pip writes for [project.scripts] aura = "aura.cli.app:main".
            self.prog = "aura"
            (self.bin / "aura").write_text(PIP_SCRIPT.format(python=sys.executable))
        else:
            self.prog = "aura.pyz" if kind == "pyz" else "aura"
            shutil.copy(pyz, self.bin / self.prog)
        (self.bin / self.prog).chmod(0o755)
        self.env = dict(os.environ)
        self.env["PATH"] = f"{self.bin}{os.pathsep}{Path(sys.executable).parent}" \
                           f"{os.pathsep}{os.environ.get('PATH', '')}"
        self.env["HOME"] = str(self.home)  # shells write history/dumps under HOME
        self.env.pop("PYTHONPATH", None)
        if kind == "pip":
            self.env["PYTHONPATH"] = str(ROOT)  # where pip would have installed the package

    @property
    def func(self) -> str:
        return "_" + re.sub(r"\W*", "", self.prog.replace("-", "_")) + "_completion"

    def shell(self, argv: list[str], **kw: object) -> subprocess.CompletedProcess:
        env = kw.pop("env", self.env)
        return subprocess.run(argv, capture_output=True, text=True, env=env,  # type: ignore[arg-type]
                              timeout=60 * TIMEOUT_FACTOR, **kw)  # type: ignore[arg-type]


@pytest.fixture(params=INSTALLS)
def install(request: pytest.FixtureRequest, tmp_path: Path, pyz_file: Path) -> Install:
    return Install(request.param, tmp_path, pyz_file)


def need(program: str) -> None:
    if shutil.which(program) is None:
        pytest.skip(f"{program} is not installed (.ci/run installs it)")


# scripts ------------------------------------------------------------------------------

@pytest.mark.parametrize("shell", ["bash", "zsh", "fish", "powershell", "elvish"])
def test_completion_prints_a_script_for_each_shell(shell: str) -> None:
    result = run_aura("completion", shell)
    assert result.returncode == 0, result.stderr
    assert "_AURA_COMPLETE" in result.stdout
    assert "aura" in result.stdout


def test_completion_refuses_an_unknown_shell() -> None:
    result = run_aura("completion", "tcsh")
    assert result.returncode == 2
    assert "tcsh" in result.stderr


def test_elvish_is_not_imported_outside_completion_mode() -> None:
    code = ("import sys; sys.argv=['aura','--help']\n"
            "from aura.cli.app import cli\n"
            "try:\n    cli.main(prog_name='aura', standalone_mode=False)\n"
            "except SystemExit:\n    pass\n"
            "print('aura.cli.completion_elvish' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=ROOT, check=True)
    assert result.stdout.strip().splitlines()[-1] == "False"


# bash ---------------------------------------------------------------------------------

def bash_complete(install: Install, words: list[str]) -> list[str]:
    """COMPREPLY after calling the function `complete -p PROG` names, as readline does."""
    quoted = " ".join(f"'{w}'" for w in words)
    script = (f'eval "$({install.prog} completion bash)" || exit 3\n'
              f"func=$(complete -p {install.prog} | awk '{{print $(NF-1)}}')\n"
              f"COMP_WORDS=({quoted}); COMP_CWORD={len(words) - 1}\n"
              f'"$func" {install.prog}\n'
              'printf "%s\\n" "${COMPREPLY[@]}"\n')
    result = install.shell(["bash", "--norc", "--noprofile", "-c", script])
    assert result.returncode == 0, result.stderr
    return [line for line in result.stdout.splitlines() if line]


def test_bash_completes_commands_options_executors_and_sessions(
        install: Install, sessions: list[str]) -> None:
    need("bash")
    p = install.prog
    top = bash_complete(install, [p, ""])
    assert {"run", "session", "completion", "doctor", "help"} <= set(top)
    assert "--executor" in bash_complete(install, [p, "run", "--exe"])
    assert "custom" in bash_complete(install, [p, "run", "--executor", ""])
    assert bash_complete(install, [p, "run", "--session", ""]) == sessions
    assert bash_complete(install, [p, "session", "show", "29"]) == [OLD_ID]
    assert bash_complete(install, [p, "completion", "e"]) == ["elvish"]
    assert bash_complete(install, [p, "help", "sess"]) == ["session"]
    assert bash_complete(install, [p, "help", "session", ""]) == \
        ["cancel", "export", "interrupt", "latest", "list", "prune", "rm", "search", "show",
         "steer"]


def test_bash_registers_the_name_aura_was_started_as(install: Install) -> None:
    need("bash")
    result = install.shell(["bash", "--norc", "--noprofile", "-c",
                            f'eval "$({install.prog} completion bash)"; '
                            f"complete -p {install.prog}"])
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-1] == install.prog


# fish ---------------------------------------------------------------------------------

def fish_complete(install: Install, line: str) -> list[str]:
    result = install.shell(["fish", "--no-config", "-c",
                            f"{install.prog} completion fish | source; complete -C '{line}'"])
    assert result.returncode == 0, result.stderr
    return [row.split("\t")[0] for row in result.stdout.splitlines() if row]


def test_fish_completes_sessions_newest_first_and_executors(
        install: Install, sessions: list[str]) -> None:
    need("fish")
    p = install.prog
    assert {"run", "session", "doctor"} <= set(fish_complete(install, f"{p} "))
    assert fish_complete(install, f"{p} run --session ") == sessions
    assert "custom" in fish_complete(install, f"{p} run --executor ")
    assert fish_complete(install, f"{p} session show eb") == [NEW_ID]


# zsh and elvish, interactively ---------------------------------------------------------

@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[terminal.Tmux]:
    if not terminal.available():
        pytest.skip("tmux is not installed (.ci/run installs it)")
    term = terminal.Tmux(tmp_path, width=180, height=40)
    yield term
    term.close()


@pytest.fixture(params=("pip", "pyz"))
def interactive_install(request: pytest.FixtureRequest, tmp_path: Path, pyz_file: Path
                        ) -> Install:
    return Install(request.param, tmp_path, pyz_file)


def _fresh_line(tmux: terminal.Tmux, prompt_mark: str) -> None:
    tmux.send("C-u")
    tmux.type("clear")
    tmux.send("Enter")
    tmux.wait_for(lambda s: s.strip().endswith(prompt_mark) and "clear" not in s)


def test_zsh_completes_on_tab(interactive_install: Install, sessions: list[str],
                              tmux: terminal.Tmux, tmp_path: Path) -> None:
    need("zsh")
    inst = interactive_install
    env = {k: inst.env[k] for k in ("PATH", "HOME", "AURA_HOME", "NO_COLOR")}
    env["PYTHONPATH"] = inst.env.get("PYTHONPATH", "")
    tmux.start(["zsh", "-f"], env=env, cwd=tmp_path)
    tmux.wait_for(lambda s: s.strip() != "")
    tmux.type(f"PS1='zsh> '; autoload -U compinit; compinit -u -d {tmp_path}/zcompdump; "
              f'eval "$({inst.prog} completion zsh)"; clear')
    tmux.send("Enter")
    tmux.wait_for(lambda s: s.strip() == "zsh>")

    tmux.type(f"{inst.prog} ")
    tmux.send("Tab")
    screen = tmux.wait_for("doctor")
    assert "session" in screen and "completion" in screen
    _fresh_line(tmux, "zsh>")

    tmux.type(f"{inst.prog} run --session ")
    tmux.send("Tab")
    screen = tmux.wait_for(OLD_ID)
    assert NEW_ID in screen and screen.index(NEW_ID) < screen.index(OLD_ID)  # newest first
    assert "second task" in screen
    _fresh_line(tmux, "zsh>")

    tmux.type(f"{inst.prog} run --executor cus")
    tmux.send("Tab")
    tmux.wait_for(f"{inst.prog} run --executor custom")
    _fresh_line(tmux, "zsh>")

    # Each executor says whether it is here: a `claude` on PATH is installed.
    claude = inst.bin / "claude"
    claude.write_text("#!/bin/sh\necho 1.0\n")
    claude.chmod(0o755)
    tmux.type(f"{inst.prog} run --executor ")
    tmux.send("Tab")
    screen = tmux.wait_for("built in")
    # zsh puts the names that share a description on one line, before it.
    described = {name: line.rsplit(" -- ", 1)[1].strip() for line in screen.splitlines()
                 if " -- " in line for name in line.rsplit(" -- ", 1)[0].split()}
    assert described["claude"] == "installed", screen
    assert described["custom"] == described["ollama"] == "built in", screen
    assert described["droid"] == "not installed", screen
    assert described["cursor"] == "alias of cursor-agent", screen


def test_elvish_completes_on_tab(interactive_install: Install, sessions: list[str],
                                 tmux: terminal.Tmux, tmp_path: Path) -> None:
    need("elvish")
    inst = interactive_install
    env = {k: inst.env[k] for k in ("PATH", "HOME", "AURA_HOME", "NO_COLOR")}
    env["PYTHONPATH"] = inst.env.get("PYTHONPATH", "")
    tmux.start(["elvish", "-norc"], env=env, cwd=tmp_path)
    tmux.wait_for(lambda s: "❱" in s or ">" in s or "#" in s or "$" in s)
    tmux.type(f"eval ({inst.prog} completion elvish | slurp); echo loaded")
    tmux.send("Enter")
    tmux.wait_for(lambda s: "\nloaded" in s)
    tmux.type(f"{inst.prog} run --session ")
    tmux.send("Tab")
    screen = tmux.wait_for(OLD_ID)
    assert NEW_ID in screen
    assert "(custom queued first task)" in screen  # the help is shown next to the id
    tmux.send("Enter")  # accept the candidate and leave completion mode
    tmux.wait_for(lambda s: "COMPLETING" not in s)
    tmux.send("C-u")

    tmux.type(f"{inst.prog} ses")
    tmux.send("Tab")
    tmux.wait_for(f"{inst.prog} session")
    tmux.type("sh")  # the completed word ends with a space: the next one is apart
    tmux.wait_for(f"{inst.prog} session sh")
    assert f"{inst.prog} sessionsh" not in tmux.screen()
    tmux.send("C-u")

    tmux.type(f"{inst.prog} run --executor cus")
    tmux.send("Tab")
    tmux.wait_for(f"{inst.prog} run --executor custom")


# PowerShell ----------------------------------------------------------------------------

def test_powershell_script_is_clicks_and_answers_in_its_protocol(sessions: list[str]) -> None:
    from click.shell_completion import PowerShellComplete

    from aura.cli.app import cli

    script = run_aura("completion", "powershell").stdout
    assert script.rstrip("\n") == \
        PowerShellComplete(cli, {}, "aura", "_AURA_COMPLETE").source().rstrip("\n")
    # What the script sends: the command text in COMP_WORDS, the word index in COMP_CWORD,
    # the instruction in _AURA_COMPLETE; what it reads: type, value, help, one per line.
    for var in ("$env:COMP_WORDS = $commandAst.ToString()", "powershell_complete",
                "$i += 3", "$env:_AURA_COMPLETE"):
        assert var in script

    def ask(words: str, cword: int) -> list[tuple[str, str, str]]:
        result = run_aura(env={"_AURA_COMPLETE": "powershell_complete", "COMP_WORDS": words,
                               "COMP_CWORD": str(cword)})
        assert result.returncode == 0, result.stderr
        lines = result.stdout.split("\n")
        return [tuple(lines[i:i + 3]) for i in range(0, len(lines) - 2, 3)]  # type: ignore[misc]

    assert ("plain", "custom", "built in") in ask("aura run --executor ", 3)
    ids = [value for _type, value, _help in ask("aura run --session ", 3)]
    assert ids == sessions
    assert ("plain", "doctor") in {t[:2] for t in ask("aura d", 1)}


@pytest.mark.skipif(shutil.which("pwsh") is None,
                    reason="pwsh is not installed here (no Debian package without Microsoft's "
                           "repository); the script is click's PowerShellComplete and its "
                           "protocol is checked by "
                           "test_powershell_script_is_clicks_and_answers_in_its_protocol")
def test_powershell_completes_in_pwsh(tmp_path: Path, pyz_file: Path,
                                      sessions: list[str]) -> None:
    inst = Install("pip", tmp_path, pyz_file)
    line = "aura run --session "
    script = ("aura completion powershell | Out-String | Invoke-Expression; "
              f"(TabExpansion2 -inputScript '{line}' -cursorColumn {len(line)})"
              ".CompletionMatches | ForEach-Object { $_.CompletionText }")
    result = inst.shell(["pwsh", "-NoProfile", "-NonInteractive", "-Command", script])
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == sessions


# board columns and workers ----------------------------------------------------------------

def test_board_columns_complete_in_board_order_quoted_for_bash(
        tmp_path: Path, pyz_file: Path, sessions: list[str]) -> None:
    need("bash")
    need("fish")
    inst = Install("pip", tmp_path, pyz_file)
    reply = bash_complete(inst, ["aura", "board", "move", NEW_ID[:8], "In"])
    assert reply == ["In\\ progress", "In\\ review"]  # one word each once inserted
    assert bash_complete(inst, ["aura", "board", "columns", "remove", "D"]) == ["Done"]
    assert fish_complete(inst, f"aura board move {NEW_ID[:8]} In") == \
        ["In progress", "In review"]
    assert fish_complete(inst, "aura board move eb") == [NEW_ID]


def test_on_completes_the_workers_and_labels_aura_workers_saw(
        tmp_path: Path, pyz_file: Path) -> None:
    from aura.cli.completion import remember_workers

    need("bash")
    inst = Install("pip", tmp_path, pyz_file)
    assert bash_complete(inst, ["aura", "run", "--on", ""]) == []  # nothing seen yet
    remember_workers([{"name": "box2", "labels": ["gpu", "linux"]},
                      {"name": "box1", "labels": ["linux"]}])
    assert bash_complete(inst, ["aura", "run", "--on", ""]) == \
        ["box1", "box2", "label:gpu", "label:linux"]
    assert bash_complete(inst, ["aura", "run", "--on", "label:g"]) == ["label:gpu"]


def test_model_completes_from_what_aura_models_discovered(tmp_path: Path,
                                                          pyz_file: Path) -> None:
    from .openai_server import FakeOpenAI

    need("bash")
    inst = Install("pip", tmp_path, pyz_file)
    assert bash_complete(inst, ["aura", "run", "--executor", "lms", "--model", ""]) == []
    with FakeOpenAI() as server:
        listed = run_aura("models", "--executor", "lms", "--openai-endpoint", server.root)
        assert listed.returncode == 0, listed.stderr
    models = ["alpha-model", "beta-model", "gamma-model"]
    assert bash_complete(inst, ["aura", "run", "--executor", "lms", "--model", ""]) == models
    assert bash_complete(inst, ["aura", "run", "-m", "be"]) == ["beta-model"]
    assert bash_complete(inst, ["aura", "run", "--executor", "ollama", "--model", ""]) == []


# repos, branches, workspaces, model servers, reviewers ----------------------------------

def test_every_executor_program_is_known_without_importing_it() -> None:
    from aura.executors import registry

    for name in registry.names():
        cls = registry.load(name)
        assert registry.PROGRAMS[name] == (cls.program, cls.npx_package), name


def _workspace_session(aura_home: Path, sid: str, branch: str, removed: bool = False) -> None:
    at = "2026-11-25T12:00:00.000Z"
    store = SQLiteStore(aura_home / "aura.db")
    ws = {"session": sid, "root": str(aura_home), "removed": removed, "saved": {},
          "repos": [{"repo": str(aura_home), "branch": branch}]}
    store.create_session(Session(id=sid, executor="custom", state=State.DONE.value,
                                 cwd=str(aura_home), created_at=at, updated_at=at,
                                 prompt="make a workspace", options={"workspace": ws}))
    store.close()


@pytest.mark.usefixtures("git_env")
def test_bash_completes_repos_branches_workspaces_and_model_servers(
        tmp_path: Path, pyz_file: Path, sessions: list[str], aura_home: Path) -> None:
    from .gitrepo import git, make_repo

    need("bash")
    inst = Install("pip", tmp_path, pyz_file)
    repo = make_repo(tmp_path / "repo")
    git(repo, "branch", "feature/tab")
    other = make_repo(tmp_path / "other")
    git(other, "branch", "elsewhere")
    (tmp_path / "repo-notes.txt").write_text("a file, not a directory")
    # bash is told `dir` (its script then lets readline list directories, which only an
    # interactive bash does); fish lists them itself, here for real.
    asked = inst.shell(["aura"], cwd=tmp_path, env={
        **inst.env, "_AURA_COMPLETE": "bash_complete", "COMP_WORDS": "aura run --repo re",
        "COMP_CWORD": "3"})
    assert asked.stdout.split() == ["dir,re"], asked.stderr
    if shutil.which("fish"):
        dirs = inst.shell(["fish", "--no-config", "-c",
                           "aura completion fish | source; complete -C 'aura run --repo re'"],
                          cwd=tmp_path)
        assert [row.split("\t")[0] for row in dirs.stdout.splitlines()] == ["repo/"]

    base = bash_complete(inst, ["aura", "run", "--repo", str(other), "--base", ""])
    assert sorted(base) == ["elsewhere", _default_branch(other)]
    script_cwd = ('eval "$(aura completion bash)"\n'
                  "COMP_WORDS=(aura run --base fe); COMP_CWORD=3\n"
                  "_aura_completion aura\n"
                  'printf "%s\\n" "${COMPREPLY[@]}"\n')
    in_repo = inst.shell(["bash", "--norc", "--noprofile", "-c", script_cwd], cwd=repo)
    assert in_repo.stdout.split() == ["feature/tab"]  # the current directory's repo
    assert bash_complete(inst, ["aura", "run", "--base", ""]) == []  # tmp_path: no repo

    live, gone = "aa11" + NEW_ID[4:], "bb22" + NEW_ID[4:]
    _workspace_session(aura_home, live, "aura/live")
    _workspace_session(aura_home, gone, "aura/gone", removed=True)
    for command in ("diff", "save", "remove"):
        assert bash_complete(inst, ["aura", "workspace", command, ""]) == [live]

    assert bash_complete(inst, ["aura", "models", "-e", ""]) == \
        ["custom", "lms", "ollama", "lm-studio", "lmstudio"]
    reviewers = bash_complete(inst, ["aura", "run", "--review-executor", "cl"])
    assert reviewers == ["claude"]


def _default_branch(repo: Path) -> str:
    from .gitrepo import git

    return git(repo, "rev-parse", "--abbrev-ref", "HEAD")


def test_fish_shows_whether_executors_are_installed(tmp_path: Path, pyz_file: Path) -> None:
    need("fish")
    inst = Install("pip", tmp_path, pyz_file)
    result = inst.shell(["fish", "--no-config", "-c",
                         "aura completion fish | source; complete -C 'aura run --executor '"])
    rows = dict(row.split("\t", 1) for row in result.stdout.splitlines() if "\t" in row)
    assert rows["custom"] == "built in"
    assert rows["droid"].startswith("not installed")
