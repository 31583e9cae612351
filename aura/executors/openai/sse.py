"""An incremental server-sent-events parser (the body of a streamed chat completion)."""

from __future__ import annotations


class SSEParser:
    """Incremental server-sent-events parser: ``feed(text)`` returns the complete events
    as (event name or None, data). Multi-line data is joined with newlines; comments,
    ``id:`` and ``retry:`` are ignored. It works on text (the body decoded incrementally
    as UTF-8) because json.loads of a str skips the encoding detection it does on bytes."""

    __slots__ = ("_buf", "_data", "_event")

    def __init__(self) -> None:
        self._buf: list[str] = []  # an unfinished line, in pieces (joined once it ends)
        self._data: list[str] = []
        self._event: str | None = None

    def feed(self, chunk: str) -> list[tuple[str | None, str]]:
        if "\n" not in chunk:
            if chunk:
                self._buf.append(chunk)
            return []
        if self._buf:
            self._buf.append(chunk)
            chunk = "".join(self._buf)
        lines = chunk.split("\n")
        last = lines.pop()
        self._buf = [last] if last else []
        events: list[tuple[str | None, str]] = []
        data = self._data
        for line in lines:
            if line[-1:] == "\r":
                line = line[:-1]
            if line[:5] == "data:":
                data.append(line[6:] if line[5:6] == " " else line[5:])
            elif not line:
                if data:
                    events.append((self._event, data[0] if len(data) == 1 else
                                   "\n".join(data)))
                    data.clear()
                self._event = None
            elif line[:6] == "event:":
                self._event = line[6:].strip()
            # ":" comments (keep-alives), id:, retry: and unknown fields are ignored.
        return events

    def finish(self) -> list[tuple[str | None, str]]:
        """An event cut off by the end of the stream (no blank line after it)."""
        return self.feed("\n\n") if self._buf or self._data else []
