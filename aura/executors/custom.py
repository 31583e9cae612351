"""The command executor: any program as an agent (``--executor custom --base-command``).

argv = shlex.split(base command) + each ``--param``, with ``{{prompt}}`` replaced by the
prompt in every argv element (never through a shell). The child gets the prompt in
``AURA_PROMPT``, the session in ``AURA_SESSION_ID``, ``--model`` in ``AURA_MODEL`` and
every ``--var``.

Output: a stdout line that is a JSON object whose ``kind`` is an entry kind is taken as a
normalized entry as is (so anyone can write an aura-native agent); any other stdout line is
assistant text; stderr lines are raw entries. Entries of aura's own kinds (``state``,
``summary``, aura's ``system`` records such as review verdicts) are refused: the line is
kept as a ``raw`` entry, so no agent can print a status line or a summary that passes for
aura's. A line that is not strict JSON (``NaN``, ``1e400``, nested deeper than
``events.MAX_DEPTH``) is text, like any other line that is not an entry.
"""

from __future__ import annotations

import shlex
from typing import Any, ClassVar, cast

from aura.contracts import ENTRY_KINDS, ENVELOPE_KEYS, Entry, EntryKind
from aura.errors import UsageError
from aura.executors.base import (
    CommandExecutor,
    Executor,
    Invocation,
    LineParser,
    Output,
    RunRequest,
)
from aura.executors.events import (
    AURA_KINDS,
    aura_own,
    forged_entry,
    json_object,
    raw_entry,
    usage_number,
)

PROMPT_PLACEHOLDER = "{{prompt}}"
_ENVELOPE = frozenset(ENVELOPE_KEYS)


def base_command(request: RunRequest) -> str | None:
    """--base-command, else ``[executors.custom] base_command`` from the config (set once
    with `aura config set executors.custom.base_command CMD`)."""
    if request.base_command is not None:
        return request.base_command
    configured = request.settings.get("base_command")
    return configured if isinstance(configured, str) and configured.strip() else None


def split_command(base_command: str) -> list[str]:
    """shlex-split a --base-command, as a usage error when it is empty or unbalanced."""
    try:
        argv = shlex.split(base_command)
    except ValueError as exc:
        raise UsageError(f"cannot parse --base-command {base_command!r}: {exc}") from None
    if not argv:
        raise UsageError("--base-command is empty")
    return argv


_TEXT_FIELDS = ("text", "output", "target", "tool", "action", "status", "stream", "id",
                "model", "reason")


def _well_formed(obj: dict[str, Any], text: str) -> bool:
    """Whether an aura-native entry has the field types the contract promises."""
    for key in _TEXT_FIELDS:
        value = obj.get(key)
        if value is not None and type(value) is not str:
            return False
    usage = obj.get("usage")
    if usage is not None and (type(usage) is not dict or not all(
            usage_number(v) for v in usage.values())):
        return False
    if "\\u" in text:
        # A JSON escape may encode a lone surrogate, which no output can print.
        try:
            text.encode("utf-8")
            for key in _TEXT_FIELDS:
                value = obj.get(key)
                if value:
                    value.encode("utf-8")
        except UnicodeEncodeError:
            return False
    return True


class NativeLineParser(LineParser):
    """Aura-native JSON entries pass through untouched; anything else is text."""

    def feed(self, line: str) -> list[Entry]:
        return [self._parse(line)[0]]

    def _parse(self, line: str) -> tuple[Entry, str | None]:
        text = line.strip()
        obj = json_object(text) if text[:1] == "{" else None
        if obj is not None:
            kind = obj.get("kind")
            if type(kind) is str and kind in ENTRY_KINDS:
                if kind in AURA_KINDS or (kind == "system" and aura_own(obj)):
                    return forged_entry(line, kind), None
                if not _well_formed(obj, text):
                    # An entry with fields of the wrong type is kept as the agent printed
                    # it, as a raw line, rather than passed on to break whoever reads it.
                    return raw_entry(line), None
                if not _ENVELOPE.isdisjoint(obj):
                    # The recorder owns the envelope; keep the agent's values aside.
                    for key in ENVELOPE_KEYS:
                        if key in obj:
                            obj.setdefault("data", {})
                            if isinstance(obj["data"], dict):
                                obj["data"][f"agent_{key}"] = obj.pop(key)
                            else:
                                obj.pop(key)
                    return cast(Entry, obj), None
                if text.count('"kind"') > 1:
                    # A key given twice: readers differ on which one counts, so the entry
                    # is stored as parsed rather than as printed.
                    return cast(Entry, obj), None
                return cast(Entry, obj), text
        return {"kind": EntryKind.ASSISTANT_MESSAGE.value, "text": line.rstrip("\r")}, None

    def feed_lines(self, lines: list[str], output: Output) -> None:
        # The hot path for aura-native agents: the line already is the entry's JSON, so
        # it is stored and printed as read instead of being encoded again.
        items: list[tuple[Entry, str]] = []
        plain: list[Entry] = []
        parse = self._parse
        for line in lines:
            obj, text = parse(line)
            if text is not None:
                if plain:
                    output.emit(plain)
                    plain = []
                items.append((obj, text))
            else:
                if items:
                    output.emit_json(items)
                    items = []
                plain.append(obj)
        if items:
            output.emit_json(items)
        if plain:
            output.emit(plain)


class CustomCommandExecutor(CommandExecutor):
    name = "custom"
    description = "any command as an agent (--base-command), or an OpenAI-compatible endpoint"
    features: ClassVar[frozenset[str]] = frozenset({"models"})  # --model → AURA_MODEL
    # A command gets exactly the user's prompt on follow-ups; AURA_SESSION_ID lets an
    # aura-native agent keep its own history.
    seed_transcript: ClassVar[bool] = False

    def for_request(self, request: RunRequest) -> Executor:
        if base_command(request) is None:
            from aura.executors.endpoint import CustomEndpointExecutor

            return CustomEndpointExecutor()
        return self

    def build_command(self, request: RunRequest) -> Invocation:
        command = base_command(request)
        if command is None:
            raise UsageError("--executor custom needs --base-command CMD")
        argv = split_command(command) + list(request.params)
        argv = [arg.replace(PROMPT_PLACEHOLDER, request.prompt) for arg in argv]
        env = request.child_env()
        env["AURA_PROMPT"] = request.prompt
        if request.model:
            env["AURA_MODEL"] = request.model
        return Invocation(argv=argv, env=env)

    def parser(self, request: RunRequest) -> LineParser:
        return NativeLineParser()
