"""The pieces every agent-output parser shares (aura.executors.events), and that the
stream-json parser, the JSON-event parsers and the ACP translator really share them."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from aura.executors.acp.entries import UpdateTranslator
from aura.executors.codex import CodexParser
from aura.executors.events import (
    UNFINISHED_CALL,
    Relativizer,
    json_object,
    raw_entry,
    relativizer,
)
from aura.executors.streamjson import StreamJsonParser


@pytest.mark.parametrize(("text", "expected"), [
    ('{"type": "x"}', {"type": "x"}),
    ('{"a": [1, {"b": 2}]}', {"a": [1, {"b": 2}]}),
    ("[1, 2]", None),
    ('"text"', None),
    ('{"type": "x"} trailing', None),
    ('{"type": ', None),
    ("plain words", None),
    ("", None),
])
def test_json_object_only_a_whole_object(text: str, expected: dict | None) -> None:
    assert json_object(text) == expected


def test_raw_entry_keeps_the_line_without_its_ending() -> None:
    assert raw_entry("  not json\r") == {"kind": "raw", "stream": "stdout",
                                         "text": "  not json"}


def test_relativizer_knows_the_directory_and_its_real_path(tmp_path: Path) -> None:
    real = tmp_path / "real"
    (real / "src").mkdir(parents=True)
    link = tmp_path / "link"
    link.symlink_to(real, target_is_directory=True)
    relative = Relativizer(str(link))
    assert relative(str(link / "src" / "a.py")) == os.path.join("src", "a.py")
    assert relative(str(real / "src" / "a.py")) == os.path.join("src", "a.py")
    assert relative(f"{link}/src/../b.txt") == "b.txt"
    assert relative(str(link)) == str(link)  # the directory itself stays as it is
    assert relative(str(tmp_path / "elsewhere.txt")) == str(tmp_path / "elsewhere.txt")
    assert relative("already/relative.txt") == "already/relative.txt"
    assert relative("") == ""


def test_relativizer_without_an_absolute_directory_changes_nothing() -> None:
    for cwd in (None, "", "relative/dir"):
        assert Relativizer(cwd)("/abs/path.txt") == "/abs/path.txt"


def test_relativizer_is_built_once_per_directory() -> None:
    assert relativizer("/w") is relativizer("/w")
    assert relativizer("/w") is not relativizer("/v")


def test_all_parsers_keep_an_unparsable_line_alike() -> None:
    line = "Warning: something odd\r"
    assert StreamJsonParser("/w").feed(line) == [raw_entry(line)]
    assert CodexParser("/w").feed(line) == [raw_entry(line)]
    # A JSON object of an unknown type is kept the same way.
    unknown = json.dumps({"type": "something_new"})
    assert StreamJsonParser("/w").feed(unknown) == [raw_entry(unknown)]


def test_all_parsers_close_an_unfinished_call_with_one_text() -> None:
    stream = StreamJsonParser("/w")
    stream.feed(json.dumps({"type": "assistant", "message": {"content": [
        {"type": "tool_use", "id": "t1", "name": "Read",
         "input": {"file_path": "/w/a.txt"}}]}}))
    [ended] = stream.finish()
    assert (ended["target"], ended["status"], ended["output"]) == \
        ("a.txt", "error", UNFINISHED_CALL)

    translator = UpdateTranslator("/w")
    translator.feed({"update": {"sessionUpdate": "tool_call", "toolCallId": "c1",
                                "kind": "read", "status": "in_progress",
                                "rawInput": {"path": "/w/b.txt"}}})
    [acp_ended] = translator.finish(None)
    assert (acp_ended["target"], acp_ended["status"], acp_ended["output"]) == \
        ("b.txt", "error", UNFINISHED_CALL)
