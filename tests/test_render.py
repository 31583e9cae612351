"""The listing helpers of aura.cli.render: aligned tables and aura's JSON text."""

from __future__ import annotations

import json

from aura.cli.render import json_text, table


def test_table_pads_every_column_but_the_last_to_its_widest_cell() -> None:
    lines = table([("ID", "STATE", "PROMPT"),
                   ("ab12", "done", "fix the parser"),
                   ("c3", "coding_initial", "")])
    assert lines == ["ID    STATE           PROMPT",
                     "ab12  done            fix the parser",
                     "c3    coding_initial  "]


def test_table_leaves_a_long_last_column_out_of_the_widths() -> None:
    lines = table([("A", "LAST"), ("x", "a much longer last cell than the rest")])
    assert lines == ["A  LAST", "x  a much longer last cell than the rest"]


def test_table_of_nothing_is_no_lines() -> None:
    assert table([]) == []


def test_json_text_is_indented_for_documents_and_one_line_for_records() -> None:
    value = {"name": "Grüße", "items": [1, 2]}
    pretty = json_text(value)
    assert pretty == '{\n  "name": "Grüße",\n  "items": [\n    1,\n    2\n  ]\n}'
    compact = json_text(value, compact=True)
    assert compact == '{"name":"Grüße","items":[1,2]}'  # as the store writes entries
    assert json.loads(pretty) == json.loads(compact) == value


def test_a_table_cuts_its_other_flexible_columns_once_nothing_is_left_to_drop() -> None:
    rows = [("ID", "TITLE", "WHY"), ("ab12cd34", "t" * 40, "w" * 40)]
    assert table(rows, 100, flexible=(2, 1)) == table(rows)  # it fits: nothing is cut
    lines = table(rows, 60, flexible=(2, 1))
    assert all(len(line) <= 60 for line in lines)
    assert lines[1] == "ab12cd34  " + "t" * 19 + "…  " + "w" * 27 + "…"
