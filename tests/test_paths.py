"""aura.paths.atomic_write on real files: replaced whole, with its mode, nothing left over."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from aura.paths import atomic_write


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_atomic_write_makes_the_directory_and_writes_text_as_utf8(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "config.toml"
    atomic_write(target, 'name = "Grüße"\n')
    assert target.read_bytes() == 'name = "Grüße"\n'.encode()
    assert mode_of(target) == 0o600
    assert os.listdir(target.parent) == ["config.toml"]


def test_atomic_write_replaces_the_file_with_bytes_and_the_given_mode(tmp_path: Path) -> None:
    target = tmp_path / "state" / "relay.json"
    target.parent.mkdir()
    target.write_text("old and longer than the new content")
    target.chmod(0o644)
    atomic_write(target, b"{}", mode=0o640)
    assert target.read_bytes() == b"{}"
    assert mode_of(target) == 0o640
    assert os.listdir(target.parent) == ["relay.json"]


def test_a_reader_holding_the_old_file_keeps_reading_it_whole(tmp_path: Path) -> None:
    target = tmp_path / "models.json"
    target.write_text("old")
    with target.open() as reader:
        atomic_write(target, "new")
        assert reader.read() == "old"  # the rename left the old inode intact
    assert target.read_text() == "new"


def test_a_failed_write_raises_and_leaves_no_temp_file(tmp_path: Path) -> None:
    folder = tmp_path / "cache"
    (folder / "workers.json").mkdir(parents=True)  # a directory where the file should go
    with pytest.raises(IsADirectoryError):
        atomic_write(folder / "workers.json", "{}")
    assert os.listdir(folder) == ["workers.json"]
    assert os.listdir(folder / "workers.json") == []
