"""The cost ledger and budgets: aggregation of usage entries (pure), `aura usage` on a real
store, `--max-cost` stopping a real agent process that reports cost as it goes (its work
saved in a real repo), and the daily budgets of the config refusing a new run."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import pytest

from aura.errors import ConfigError, UsageError
from aura.service.run_options import RunOptions, WireError
from aura.service.usage import Price, UsageItem, aggregate, cost_of, parse_since, prices
from tests.conftest import run_aura
from tests.gitrepo import git, git_env, make_repo

__all__ = ["git_env"]  # a fixture, used by name

PRICES = {"m-priced": Price(input_per_mtok=3.0, output_per_mtok=15.0, cached_per_mtok=0.3)}


def item(model: str = "m-priced", *, ts: str = "2026-11-30T10:00:00.000Z",
         executor: str = "claude", session: str = "s1", **usage: object) -> UsageItem:
    return UsageItem(ts=ts, session=session, executor=executor, model=model, repo="/r",
                     usage=usage)


# aggregation (pure) --------------------------------------------------------------------

def test_reported_cost_wins_over_the_price_table() -> None:
    assert cost_of({"cost_usd": 0.5, "input_tokens": 10**6}, "m-priced", PRICES) == 0.5


def test_tokens_only_are_priced_with_cached_input_apart() -> None:
    # 1M input of which 400k cached, 100k output: 600k*3 + 400k*0.3 + 100k*15, per 1M
    cost = cost_of({"input_tokens": 1_000_000, "cached_input_tokens": 400_000,
                    "output_tokens": 100_000}, "m-priced", PRICES)
    assert cost == pytest.approx(1.8 + 0.12 + 1.5)


def test_unknown_model_has_unknown_cost_and_keeps_its_tokens() -> None:
    totals = aggregate([item("mystery", input_tokens=100, output_tokens=7)], "model", PRICES)
    [total] = totals
    data = total.to_json()
    assert data["cost_usd"] is None and data["cost_complete"] is False
    assert (data["input_tokens"], data["output_tokens"]) == (100, 7)
    assert data["unpriced_models"] == ["mystery"]


def test_groups_sum_per_key_and_mark_partial_cost() -> None:
    items = [item(cost_usd=1.25, input_tokens=10, executor="claude"),
             item(cost_usd=0.75, output_tokens=5, executor="claude",
                  ts="2026-11-29T23:59:59.000Z"),
             item("mystery", input_tokens=3, executor="codex")]
    by_exec = {t.key: t.to_json() for t in aggregate(items, "executor", PRICES)}
    assert by_exec["claude"]["cost_usd"] == 2.0 and by_exec["claude"]["entries"] == 2
    assert by_exec["codex"]["cost_usd"] is None
    days = [t.key for t in aggregate(items, "day", PRICES)]
    assert days == ["2026-11-29", "2026-11-30"]
    [everything] = aggregate(items, "session", PRICES)
    data = everything.to_json()
    assert data["cost_usd"] == 2.0 and data["cost_complete"] is False


def test_hostile_figures_are_not_added_up() -> None:
    items = [item(cost_usd=float("nan"), input_tokens=float("inf")),
             item(cost_usd=True, output_tokens="12"), item(cost_usd=1e300)]
    [total] = aggregate(items, "model", {})
    data = total.to_json()
    json.dumps(data, allow_nan=False)  # strict JSON: no NaN or Infinity got in
    assert data["input_tokens"] == 0 and data["output_tokens"] == 0
    assert data["cost_usd"] is None  # none of those costs is a figure


def test_bad_grouping_since_and_price_tables_are_refused() -> None:
    with pytest.raises(UsageError):
        aggregate([], "color", PRICES)
    with pytest.raises(UsageError, match="--since"):
        parse_since("yesterday")
    assert parse_since("2026-11-30") == "2026-11-30T00:00:00.000Z"
    for bad in ({"prices": {"m": {"input_per_mtok": -1, "output_per_mtok": 1}}},
                {"prices": {"m": {"input_per_mtok": 1}}},
                {"prices": {"m": {"input_per_mtok": 1, "output_per_mtok": 1, "tip": 2}}},
                {"prices": "cheap"}):
        with pytest.raises(ConfigError):
            prices(bad)
    assert prices({"prices": {"m": {"input_per_mtok": 2, "output_per_mtok": 4}}})["m"] == \
        Price(2.0, 4.0, 2.0)


def test_max_cost_travels_to_a_worker_and_is_checked() -> None:
    wire = RunOptions(prompt="p", max_cost=2.5).to_wire()
    assert RunOptions.from_wire(wire, follow_up=False).max_cost == 2.5
    assert "max_cost" not in RunOptions(prompt="p").to_wire()
    for bad in (-1, 0, "5", True, float("nan"), 1e9):
        with pytest.raises(WireError):
            RunOptions.from_wire({**wire, "max_cost": bad}, follow_up=False)


# real runs -----------------------------------------------------------------------------

SPENDER = """\
import json, sys, time
# Writes a file, then reports usage with cost as it goes, one entry at a time, at the
# pace of an agent's turns (slower than aura's 1 s grace before it terminates a child).
open("work.txt", "w").write("half done\\n")
for i in range(20):
    print(json.dumps({"kind": "usage", "model": "m-priced",
                      "usage": {"input_tokens": 1000, "output_tokens": 100,
                                "cost_usd": 0.10}}), flush=True)
    print("step %d" % i, flush=True)
    time.sleep(1.2)
print("finished all steps", flush=True)
"""


def _spender(tmp_path: Path, text: str = SPENDER) -> str:
    path = tmp_path / "spender.py"
    path.write_text(text)
    return shlex.join([sys.executable, str(path)])


# The same agent reporting tokens only: $0.10 a step at the config's prices below.
TOKEN_SPENDER = SPENDER.replace('"m-priced"', '"m-tokens"').replace(
    '"input_tokens": 1000, "output_tokens": 100,\n' + " " * 32 + '"cost_usd": 0.10}',
    '"input_tokens": 1000, "output_tokens": 1000}')
TOKEN_PRICES = '[prices."m-tokens"]\ninput_per_mtok = 1.0\noutput_per_mtok = 99.0\n'


@pytest.mark.usefixtures("git_env")
def test_max_cost_counts_tokens_priced_by_the_config(tmp_path: Path, aura_home: Path) -> None:
    assert "cost_usd" not in TOKEN_SPENDER and "m-tokens" in TOKEN_SPENDER
    config = aura_home / "config.toml"
    config.write_text(TOKEN_PRICES)
    repo = make_repo(tmp_path / "repo")
    proc = run_aura("run", "--executor", "custom", "--prompt", "spend",
                    "--base-command", _spender(tmp_path, TOKEN_SPENDER), "--repo", str(repo),
                    "--max-cost", "0.25", "--no-tui", "--json",
                    env={"AURA_CONFIG": str(config)})
    assert proc.returncode == 1, proc.stderr
    session = json.loads(proc.stdout.splitlines()[0])["session"]
    entries = _entries(session)
    usages = [e for e in entries if e["kind"] == "usage"]
    # $0.10 each, priced from tokens: the 3rd passes 0.25; at most one more is read.
    assert 3 <= len(usages) <= 4, len(usages)
    assert not any(e.get("text") == "finished all steps" for e in entries)
    states = [e for e in entries if e["kind"] == "state"]
    assert states[-1]["to"] == "cancelled"
    assert states[-1]["reason"].startswith("budget: cost $0.3")
    saved = git(repo, "for-each-ref", "--format=%(refname)", "refs/aura/saved/")
    assert saved and git(repo, "show", f"{saved.splitlines()[0]}:work.txt") == "half done"
    # the limit and `aura usage` price the same entries the same way
    total = json.loads(run_aura("usage", "--json", env={"AURA_CONFIG": str(config)}).stdout)
    assert total[0]["cost_usd"] == pytest.approx(0.1 * len(usages))


def _entries(session: str) -> list[dict]:
    proc = run_aura("session", "show", session, "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    return data["entries"] if isinstance(data, dict) else data


@pytest.mark.usefixtures("git_env")
def test_max_cost_stops_the_agent_within_one_entry_and_saves_its_work(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    proc = run_aura("run", "--executor", "custom", "--prompt", "spend",
                    "--base-command", _spender(tmp_path), "--repo", str(repo),
                    "--max-cost", "0.15", "--no-tui", "--json")
    assert proc.returncode == 1, proc.stderr
    records = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    session = records[0]["session"]
    entries = _entries(session)
    usages = [e for e in entries if e["kind"] == "usage"]
    # 0.10 each: the 2nd passes 0.15; at most one more is read before the agent stops.
    assert 2 <= len(usages) <= 3, len(usages)
    assert not any(e.get("text") == "finished all steps" for e in entries)
    states = [e for e in entries if e["kind"] == "state"]
    assert states[-1]["to"] == "cancelled"
    assert states[-1]["reason"].startswith("budget: cost $0.2")
    assert "passed --max-cost $0.15" in states[-1]["reason"]
    saved = git(repo, "for-each-ref", "--format=%(refname)", "refs/aura/saved/")
    assert saved, "the agent's uncommitted work was not saved"
    assert git(repo, "show", f"{saved.splitlines()[0]}:work.txt") == "half done"
    listed = run_aura("session", "list", "--json")
    assert json.loads(listed.stdout)[0]["state"] == "cancelled"


def test_usage_json_on_a_real_store(tmp_path: Path, aura_home: Path) -> None:
    config = aura_home / "config.toml"
    config.write_text('[prices."m-priced"]\ninput_per_mtok = 3.0\noutput_per_mtok = 15.0\n')
    env = {"AURA_CONFIG": str(config)}
    lines = [{"kind": "usage", "model": "m-priced", "usage": {"input_tokens": 1_000_000}},
             {"kind": "usage", "model": "mystery", "usage": {"output_tokens": 42}},
             {"kind": "assistant_message", "text": "hi",
              "usage": {"cost_usd": 0.5, "input_tokens": 1}}]
    script = "; ".join(f"echo {shlex.quote(json.dumps(x))}" for x in lines)
    ran = run_aura("run", "--executor", "custom", "--prompt", "x", "--base-command", "sh",
                   "--param", "-c", "--param", script, "--no-tui", env=env)
    assert ran.returncode == 0, ran.stderr
    proc = run_aura("usage", "--by", "model", "--json", "--since", "1d", env=env)
    assert proc.returncode == 0, proc.stderr
    totals = {t["key"]: t for t in json.loads(proc.stdout)}
    assert totals["m-priced"]["cost_usd"] == 3.0
    assert totals["mystery"]["cost_usd"] is None and totals["mystery"]["output_tokens"] == 42
    # the message without a model takes the session's: none given, so "(unknown)"
    assert totals["(unknown)"]["cost_usd"] == 0.5
    text = run_aura("usage", "--by", "model", env=env)
    assert "cost unknown" in text.stdout and "$3.0000" in text.stdout
    bad = run_aura("usage", "--since", "soon", env=env)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1


def test_daily_budget_refuses_a_run_in_one_line_and_records_nothing(
        tmp_path: Path, aura_home: Path) -> None:
    config = aura_home / "config.toml"
    env = {"AURA_CONFIG": str(config)}
    paid = json.dumps({"kind": "usage", "usage": {"cost_usd": 2.0}})
    ran = run_aura("run", "--executor", "custom", "--prompt", "x", "--base-command", "sh",
                   "--param", "-c", "--param", f"echo {shlex.quote(paid)}", "--no-tui",
                   env=env)
    assert ran.returncode == 0, ran.stderr
    config.write_text("[budgets]\ndaily_usd = 1.5\n")
    refused = run_aura("run", "--executor", "custom", "--prompt", "y", "--base-command",
                       "true", "--no-tui", env=env)
    assert refused.returncode == 1
    assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert "budget exhausted: daily $2.00 of $1.50 ([budgets] daily_usd)" in refused.stderr
    listed = json.loads(run_aura("session", "list", "--json", env=env).stdout)
    assert len(listed) == 1  # only the first run: the refused one recorded nothing
    config.write_text("[budgets]\ndaily_usd = 10\n[budgets.executors]\ncustom = 2\n")
    refused = run_aura("run", "--executor", "custom", "--prompt", "y", "--base-command",
                       "true", "--no-tui", env=env)
    assert "budget exhausted: daily $2.00 of $2.00 for custom ([budgets.executors] custom)" \
        in refused.stderr
    config.write_text("[budgets]\ndaily_usd = 10\n[budgets.executors]\ncodex = 1\n")
    allowed = run_aura("run", "--executor", "custom", "--prompt", "y", "--base-command",
                       "true", "--no-tui", env=env)
    assert allowed.returncode == 0, allowed.stderr  # another executor's budget
    config.write_text('[budgets]\ndaily_usd = "lots"\n')
    broken = run_aura("run", "--executor", "custom", "--prompt", "y", "--base-command",
                      "true", "--no-tui", env=env)
    assert broken.returncode != 0 and "[budgets]" in broken.stderr
    assert len(broken.stderr.strip().splitlines()) == 1
