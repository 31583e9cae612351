"""History as a work log in the store: full-text search over every stored entry, and
removing sessions with everything that belongs to them.

Search uses an FTS5 table, ``entry_search`` (migration 8): one document per stored batch,
its bodies as stored. The index is contentless and keeps no positions (the text is in
``entries`` already; matches are checked in Python), and ``entry_docs`` maps a document to
its batch by session and first seq (an INTEGER PRIMARY KEY, which VACUUM keeps, unlike the
rowids of ``entries``).

The index is brought up to date when it is searched (``catch_up``, one transaction), not
on every batch: measured with bench/ingest.py, keeping it in step at ingest cost a run
some 45% more CPU with a trigger on ``entries`` and 140% with the writer thread adding a
row per entry, and cut `aura run`'s ingest rate from 0.50 of the baseline to 0.27-0.31,
while catching up costs a search about what the trigger would have cost the runs since
the last search. Migration 8 indexes what is stored already.

A batch that matches is read back and each of its entries checked in Python: all the
query's words must be among the entry's own words (its string values, the envelope left
out), so keys and ids in the JSON never make a hit. Where SQLite has no FTS5 nothing is
made and search scans the entries with LIKE instead (``HistoryTables.fts`` is False;
callers say so).
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from aura.errors import StoreError

_ENVELOPE = frozenset({"seq", "ts", "session", "execution", "stage", "kind", "delta",
                       "streamed", "incomplete"})
MARK_START, MARK_END = "\x02", "\x03"  # around a match in a snippet


def entry_words(body: str) -> str:
    """The searchable text of one stored entry: its string values (nested ones too), the
    envelope left out, so searching "session" does not match every entry."""
    try:
        entry = json.loads(body)
    except (ValueError, RecursionError):
        return body
    if not isinstance(entry, dict):
        return body
    out: list[str] = []
    _strings((v for k, v in entry.items() if k not in _ENVELOPE), out)
    return "\n".join(out)


def _strings(values: Iterable[Any], out: list[str]) -> None:
    for value in values:
        if isinstance(value, str):
            out.append(value)
        elif isinstance(value, dict):
            _strings(value.values(), out)
        elif isinstance(value, list):
            _strings(value, out)


def _indexed(column: str) -> str:
    """The text the index gets of a batch: JSON's \\n, \\t and \\r escapes made spaces,
    so a word after a line break is that word, not one glued to the "n" (SQL strings
    have no escapes: '\\n' here is a backslash and an n)."""
    return f"replace(replace(replace({column}, '\\n', ' '), '\\t', ' '), '\\r', ' ')"


def migration_8(db: sqlite3.Connection) -> None:
    """The full-text index of entries, with the entries already stored put in it. Without
    FTS5 in this SQLite nothing is made (search falls back to LIKE)."""
    try:
        db.execute("CREATE VIRTUAL TABLE IF NOT EXISTS entry_search USING fts5(bodies, "
                   "content = '', detail = none, columnsize = 0, "
                   "tokenize = 'unicode61 remove_diacritics 2')")
    except sqlite3.OperationalError as exc:
        if "fts5" in str(exc):
            return
        raise
    # Merge index segments in bigger steps (16, not 4): a fifth less work to index.
    db.execute("INSERT INTO entry_search (entry_search, rank) VALUES ('automerge', 16)")
    db.execute("CREATE TABLE IF NOT EXISTS entry_docs (docid INTEGER PRIMARY KEY, "
               "session TEXT NOT NULL, first_seq INTEGER NOT NULL)")
    db.execute("CREATE UNIQUE INDEX IF NOT EXISTS entry_docs_batch ON entry_docs "
               "(session, first_seq)")
    catch_up(db)


def catch_up(db: sqlite3.Connection) -> int:
    """Index the batches stored since the index was last brought up to date (inside the
    caller's transaction); returns how many."""
    start = db.execute("SELECT coalesce(max(docid), 0) FROM entry_docs").fetchone()[0]
    db.execute("INSERT INTO entry_docs (session, first_seq) SELECT e.session, e.first_seq "
               "FROM entries e WHERE NOT EXISTS (SELECT 1 FROM entry_docs d WHERE "
               "d.session = e.session AND d.first_seq = e.first_seq) ORDER BY e.rowid")
    return db.execute(
        f"INSERT INTO entry_search (rowid, bodies) SELECT d.docid, {_indexed('e.bodies')} "
        "FROM entry_docs d JOIN entries e ON e.session = d.session AND "
        "e.first_seq = d.first_seq WHERE d.docid > ?", (start,)).rowcount


def words_of(text: str) -> list[str]:
    """Words as FTS5's unicode61 tokenizer cuts them (letters and digits), case-folded."""
    return _WORD.findall(text.casefold())


_WORD = re.compile(r"[^\W_]+")


def fts_query(text: str) -> str:
    """``text`` as an FTS5 query: every word must occur (each quoted: no FTS syntax)."""
    return " ".join(f'"{w}"' for w in words_of(text))


@dataclass(frozen=True, slots=True)
class Hit:
    """One entry that matched a search."""

    session: str
    executor: str
    seq: int
    ts: str
    kind: str
    snippet: str  # the match between MARK_START and MARK_END

    def to_json(self) -> dict[str, Any]:
        plain = self.snippet.replace(MARK_START, "").replace(MARK_END, "")
        return {"session": self.session, "executor": self.executor, "seq": self.seq,
                "ts": self.ts, "kind": self.kind, "snippet": plain}


def snippet_of(words: str, needle: str, width: int = 80) -> str:
    """A window of ``words`` around the first case-insensitive match of ``needle``'s
    first word, the match marked (what FTS5's snippet() gives, for the LIKE path)."""
    flat = " ".join(words.split())
    first = needle.split()[0] if needle.split() else needle
    at = flat.lower().find(first.lower())
    if at < 0:
        return flat[:width]
    start = max(0, at - width // 3)
    end = min(len(flat), at + len(first) + width // 2)
    return ("…" if start else "") + flat[start:at] + MARK_START + \
        flat[at:at + len(first)] + MARK_END + flat[at + len(first):end] + \
        ("…" if end < len(flat) else "")


def hit_from(session: str, executor: str, body: str, snippet: str) -> Hit:
    try:
        entry = json.loads(body)
    except (ValueError, RecursionError):
        entry = {}
    if not isinstance(entry, dict):
        entry = {}
    seq = entry.get("seq")
    return Hit(session, executor, seq if isinstance(seq, int) else 0,
               str(entry.get("ts") or ""), str(entry.get("kind") or "raw"),
               " ".join(snippet.split()))


class HistoryTables:
    """Search and removal on SQLite (mixed into ``SQLiteStore``)."""

    _db: sqlite3.Connection
    _has_fts: bool | None = None

    def _write(self) -> Any:
        raise NotImplementedError

    def _read(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        raise NotImplementedError

    @property
    def fts(self) -> bool:
        """Whether this database has the full-text index (else search uses LIKE)."""
        if self._has_fts is None:
            self._has_fts = self._db.execute(
                "SELECT 1 FROM sqlite_master WHERE name = 'entry_search'").fetchone() is not None
        return self._has_fts

    def search_entries(self, text: str, *, executor: str | None = None,
                       since: str | None = None, limit: int = 50) -> list[Hit]:
        """Entries whose words hold every word of ``text`` (case-insensitive), newest
        first, of sessions of ``executor``, stored at or after ``since``."""
        where, params = _session_filter(executor, since)
        if not self.fts:
            return self._search_like(text, where, params, since, limit)
        query = fts_query(text)
        if not query:
            return []
        try:
            with self._write():
                catch_up(self._db)
        except StoreError:
            # A database this process may only read: the index may lag behind, so
            # every entry is read with LIKE instead.
            return self._search_like(text, where, params, since, limit)
        try:
            rows = self._db.execute(
                "SELECT e.session, s.executor, e.bodies FROM entry_search f "
                "JOIN entry_docs d ON d.docid = f.rowid JOIN entries e ON "
                "e.session = d.session AND e.first_seq = d.first_seq "
                "JOIN sessions s ON s.id = e.session WHERE entry_search MATCH ?" + where +
                " ORDER BY f.rowid DESC", [query, *params])
        except sqlite3.OperationalError:
            # A word FTS5 cuts in two (a phrase, which an index without positions
            # cannot match): the slower scan finds it all the same.
            return self._search_like(text, where, params, since, limit)
        wanted = set(words_of(text))
        return collect(((sid, ex, bodies.split("\n")) for sid, ex, bodies in rows),
                       lambda shown: wanted <= set(words_of(shown)), text, since, limit)

    def _search_like(self, text: str, where: str, params: list[Any], since: str | None,
                     limit: int) -> list[Hit]:
        pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        rows = self._read(
            "SELECT e.session, s.executor, e.bodies FROM entries e JOIN sessions s ON "
            "s.id = e.session WHERE e.bodies LIKE ? ESCAPE '\\'" + where +
            " ORDER BY e.rowid DESC", [pattern, *params])
        needle = text.casefold()
        return collect(((sid, ex, bodies.split("\n")) for sid, ex, bodies in rows),
                       lambda shown: needle in shown.casefold(), text, since, limit)

    def delete_sessions(self, session_ids: Sequence[str]) -> None:
        """Remove the sessions with their entries (and index rows), executions,
        transitions, approvals, claims, tasks and attempts, all in one transaction."""
        with self._write():
            for sid in session_ids:
                if self.fts:  # a contentless index is told what each document held
                    self._db.execute(
                        "INSERT INTO entry_search (entry_search, rowid, bodies) SELECT "
                        f"'delete', d.docid, {_indexed('e.bodies')} FROM entry_docs d "
                        "JOIN entries e ON "
                        "e.session = d.session AND e.first_seq = d.first_seq "
                        "WHERE d.session = ?", (sid,))
                    self._db.execute("DELETE FROM entry_docs WHERE session = ?", (sid,))
                for sql in ("DELETE FROM entries WHERE session = ?",
                            "DELETE FROM transitions WHERE session = ?",
                            "DELETE FROM approvals WHERE session = ?",
                            "DELETE FROM session_claims WHERE session = ?",
                            "DELETE FROM task_deps WHERE task = ?",
                            "DELETE FROM attempts WHERE session = ?",
                            "DELETE FROM tasks WHERE session = ?",
                            "DELETE FROM executions WHERE session = ?",
                            "DELETE FROM sessions WHERE id = ?"):
                    self._db.execute(sql, (sid,))
            self._db.execute("DELETE FROM attempt_groups WHERE id NOT IN "
                             "(SELECT grp FROM attempts)")  # a group none of whose is left


def _session_filter(executor: str | None, since: str | None) -> tuple[str, list[Any]]:
    where, params = "", []
    if executor is not None:
        where += " AND s.executor = ?"
        params.append(executor)
    if since is not None:
        where += " AND s.updated_at >= ?"
        params.append(since)
    return where, params


def memory_search(sessions: dict[str, Any], entries: dict[str, dict[int, str]], text: str,
                  executor: str | None, since: str | None, limit: int) -> list[Hit]:
    """search_entries over a MemoryStore's dicts: every word of ``text`` is a word of the
    entry, in any case (as FTS5's unicode61 tokens match)."""
    words = set(words_of(text))
    found = [(s.created_at, sid) for sid, s in sessions.items()
             if (executor is None or s.executor == executor) and
             (since is None or s.updated_at >= since)]
    batches = ((sid, sessions[sid].executor, [entries[sid][q] for q in sorted(entries[sid])])
               for _created, sid in sorted(found, reverse=True) if sid in entries)
    return collect(batches, lambda shown: bool(words) and words <= set(words_of(shown)),
                   text, since, limit)


def collect(batches: Iterable[tuple[str, str, list[str]]], match: Callable[[str], bool],
            text: str, since: str | None, limit: int) -> list[Hit]:
    """The hits among batches (newest first; each batch's entries in seq order): entries
    whose words ``match``, stored at or after ``since``, at most ``limit``."""
    hits: list[Hit] = []
    for session, executor, bodies in batches:
        for body in reversed(bodies):
            shown = entry_words(body)
            if not match(shown):
                continue
            hit = hit_from(session, executor, body, snippet_of(shown, text))
            if since is not None and hit.ts and hit.ts < since:
                continue
            hits.append(hit)
            if len(hits) >= limit:
                return hits
    return hits
    return hits
