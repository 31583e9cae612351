"""The TUI's approval bar: the request an agent waits on (what, where, the command or the
start of the diff), shown above the prompt until someone answers it.

The bar is the TUI's ``Person`` for the broker (aura.service.approvals): ``answer()``
waits for a key — ``y`` allow once, ``a`` allow for this session, ``n`` deny (then the
prompt takes an optional message for the agent, and Enter sends the deny) — and is
cancelled when the answer
came from elsewhere (`aura approve` in another terminal, the timeout). Several requests
wait in order; the bar shows the oldest and how many more there are.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from prompt_toolkit.formatted_text import StyleAndTextTuples

from aura.approvals import Choice
from aura.contracts import Entry

BAR_DETAIL_LINES = 8  # lines of command/diff the bar shows at most


class ApprovalBar:
    def __init__(self, on_change: Callable[[], None]) -> None:
        self._on_change = on_change
        self._waiting: list[tuple[Any, asyncio.Future[Any]]] = []
        self.writing_message = False  # after n: the prompt holds the message of the deny

    @property
    def visible(self) -> bool:
        return bool(self._waiting)

    async def answer(self, approval: Any) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        item = (approval, future)
        self._waiting.append(item)
        self._on_change()
        try:
            return await future
        finally:
            if item in self._waiting:
                self._waiting.remove(item)
            if not self._waiting:
                self.writing_message = False  # answered elsewhere meanwhile
            self._on_change()

    def choose(self, choice: Choice, message: str | None = None) -> bool:
        """Answer the request the bar shows; False when none waits."""
        from aura.service.approvals import Answer, who

        while self._waiting:
            _approval, future = self._waiting.pop(0)
            if not future.done():
                self.writing_message = False
                future.set_result(Answer(choice, message, who("tui")))
                self._on_change()
                return True
        return False

    def text(self) -> StyleAndTextTuples:
        from aura.cli.render import approval_detail

        if not self._waiting:
            return []
        approval = self._waiting[0][0]
        more = f"  (+{len(self._waiting) - 1} more waiting)" if len(self._waiting) > 1 else ""
        out: StyleAndTextTuples = [
            ("class:approval.head", f" ⚠ the agent asks ({approval.kind.value}): "
                                    f"{approval.title}{more} \n")]
        for line in approval_detail(approval.to_json())[:BAR_DETAIL_LINES]:
            out.append(("class:approval.detail", line[:200] + "\n"))
        if self.writing_message:
            out += [("class:footer", " deny: type a message for the agent in the prompt, "),
                    ("class:footer.key", "Enter"), ("class:footer", " sends the deny, "),
                    ("class:footer.key", "Esc"), ("class:footer", " goes back ")]
        else:
            out += [("class:footer.key", " y"), ("class:footer", " allow once "),
                    ("class:footer.key", " a"), ("class:footer", " allow for this session "),
                    ("class:footer.key", " n"), ("class:footer", " deny (with a message) ")]
        out.append(("class:dim", f"  or: aura approve {approval.id[:8]}"))
        return out

    def height(self) -> int:
        if not self._waiting:
            return 0
        from aura.cli.render import approval_detail

        detail = approval_detail(self._waiting[0][0].to_json())
        return 2 + min(len(detail), BAR_DETAIL_LINES)


def approval_log_line(entry: Entry) -> StyleAndTextTuples:
    """An approval entry in the Logs pane: the request, or its outcome and by whom."""
    data = entry.get("data") or {}
    short = str(data.get("id", ""))[:8]
    state = data.get("state")
    if state == "pending":
        return [("class:approval.head", f"? approval {short} ({data.get('kind')}): "
                                        f"{' '.join(str(data.get('title')).split())[:160]}")]
    style = "class:status.ok" if state == "allowed" else "class:status.error"
    how = " for this session" if data.get("choice") == "allow_session" else ""
    said = f": {data['message']}" if data.get("message") else ""
    return [(style, f"{'✓' if state == 'allowed' else '✗'} approval {short} {state}{how} "
                    f"by {data.get('by') or '?'}{said}"[:220])]
