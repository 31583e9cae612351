"""Followers: clients that receive a session's entries (``session.follow``, ``run.start``),
fed from the store page by page and then from each batch as a worker relays it.

A follower that falls behind (more than ``LAG_BYTES`` queued for it and not yet read) is
dropped from the live fan-out and told so with ``session.behind``, naming the last seq it
was sent: it catches up by paging ``session.entries`` from there and follows again. So a
client that stops reading costs the coordinator a bounded queue, and loses nothing.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from aura.rpc import entries_message, notification, seq_of
from aura.store import Store

PAGE_BYTES = 4 << 20  # entries per session.entries page stay well under any message limit
PAGE_ENTRIES = 5000
LAG_BYTES = 4 << 20  # queued for one follower before it is dropped from live fan-out

_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


class Follower(Protocol):
    def send_text(self, text: str) -> None:
        """Send one message as it is (already JSON)."""
        ...

    @property
    def backlog(self) -> int:
        """Bytes sent to it and not yet written to its socket."""
        ...


def page(store: Store, session_id: str, after: int, limit: int) -> tuple[list[str], bool]:
    """Up to ``limit`` stored entries after ``after`` as JSON texts, cut short to stay
    under PAGE_BYTES; and whether more follow."""
    entries = store.entries(session_id, after, limit)
    texts: list[str] = []
    size = 0
    for item in entries:
        text = _encode(item)
        size += len(text)
        if texts and size > PAGE_BYTES:
            return texts, True
        texts.append(text)
    return texts, len(entries) == limit


def entries_notification(session_id: str, texts: list[str]) -> str:
    return entries_message("session.entries", {"session": session_id}, texts)


def behind_notification(session_id: str, after: int) -> str:
    return notification("session.behind", {"session": session_id, "after_seq": after})


@dataclass
class SessionFeed:
    followers: dict[Follower, int] = field(default_factory=dict)  # → last seq sent
    high_water: int | None = None  # highest seq received and fanned out
    # Batches received and not yet committed (a new follower gets them from here).
    inflight: deque[list[str]] = field(default_factory=deque)


class Feeds:
    """Every followed or relayed session's feed, and who follows what."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._feeds: dict[str, SessionFeed] = {}
        self._following: dict[Follower, set[str]] = {}

    def follow(self, follower: Follower, session_id: str, after: int) -> bool:
        """Send what is stored after ``after``, then everything new, in order; False
        when the follower fell behind on the way (it was sent ``session.behind``).

        Nothing awaits between reading the store and joining the followers, so no batch
        can slip in between (the client drops any seq it already has)."""
        while True:
            if follower.backlog > LAG_BYTES:
                follower.send_text(behind_notification(session_id, after))
                return False
            texts, more = page(self.store, session_id, after, PAGE_ENTRIES)
            if texts:
                follower.send_text(entries_notification(session_id, texts))
                after = seq_of(texts[-1])
            if not more:
                break
        feed = self._feed(session_id)
        for texts in feed.inflight:
            fresh = [t for t in texts if seq_of(t) > after]
            if fresh:
                follower.send_text(entries_notification(session_id, fresh))
                after = seq_of(fresh[-1])
        feed.followers[follower] = after
        self._following.setdefault(follower, set()).add(session_id)
        return True

    def leave(self, follower: Follower) -> None:
        for session_id in self._following.pop(follower, ()):
            feed = self._feeds.get(session_id)
            if feed is not None:
                feed.followers.pop(follower, None)

    def _drop(self, feed: SessionFeed, follower: Follower, session_id: str) -> None:
        """Out of the live fan-out: it pages from its last seq and follows again."""
        after = feed.followers.pop(follower)
        following = self._following.get(follower)
        if following is not None:
            following.discard(session_id)
        follower.send_text(behind_notification(session_id, after))

    def send(self, session_id: str, text: str) -> None:
        feed = self._feeds.get(session_id)
        for follower in feed.followers if feed is not None else ():
            follower.send_text(text)

    def resume(self, session_id: str, stored_seq: int) -> None:
        """A worker resends from ``stored_seq``: nothing at or below it is new."""
        feed = self._feed(session_id)
        if feed.high_water is None:
            feed.high_water = stored_seq

    def received(self, session_id: str, seqs: Sequence[int], top: int,
                 texts: list[str]) -> None:
        """A batch arrived (not yet committed; ``top`` is its highest seq): followers get
        what they have not had."""
        feed = self._feed(session_id)
        high = feed.high_water or 0
        feed.high_water = max(high, top)
        if top > high and feed.followers:
            fresh = texts if seqs[0] > high else [
                t for q, t in zip(seqs, texts, strict=True) if q > high]
            text = entries_notification(session_id, fresh)
            for follower in list(feed.followers):
                if follower.backlog > LAG_BYTES:
                    self._drop(feed, follower, session_id)
                    continue
                follower.send_text(text)
                feed.followers[follower] = top
        feed.inflight.append(texts)

    def committed(self, session_id: str) -> None:
        """The oldest batch in flight is stored (or failed: then it is resent)."""
        feed = self._feeds.get(session_id)
        if feed is not None and feed.inflight:
            feed.inflight.popleft()

    def _feed(self, session_id: str) -> SessionFeed:
        # Feeds stay (a few bytes each): high_water keeps a resent batch from reaching
        # followers twice however long the worker was away.
        feed = self._feeds.get(session_id)
        if feed is None:
            feed = self._feeds[session_id] = SessionFeed()
        return feed
