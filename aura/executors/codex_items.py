"""codex app-server's messages as aura sees them, sans-I/O: its ``item/*``, usage, error
and turn notifications become the entries ``codex exec --json`` gives (through the exec
parser, ``aura.executors.codex.CodexParser``, handed in so the mapping stays in one place),
and its approval requests become ``ApprovalRequest``s whose ``Decision`` is turned back into
the answer codex expects.

The app-server names items in camelCase (``agentMessage``, ``commandExecution``,
``fileChange``…) where exec says ``agent_message``…; ``exec_item`` renames one item to the
exec shape. A file change's diff and paths come only with its ``item/started``, not with the
approval request (matched on ``itemId``), so started items are kept until they complete.
"""

from __future__ import annotations

from typing import Any

from aura.approvals import ApprovalKind, ApprovalOption, ApprovalRequest, Decision, OptionKind
from aura.contracts import Entry, EntryKind
from aura.executors.events import raw_entry
from aura.executors.jsonevents import JsonEventParser

COMMAND_APPROVAL = "item/commandExecution/requestApproval"
FILE_APPROVAL = "item/fileChange/requestApproval"
APPROVAL_METHODS = frozenset({COMMAND_APPROVAL, FILE_APPROVAL})

# Every answer codex 0.169 accepts. Its ``availableDecisions`` leaves out ``decline`` and
# ``acceptForSession`` for commands although both work, so the list is not trusted.
ALLOW_ONCE = ApprovalOption("accept", "Allow once", OptionKind.ALLOW_ONCE)
DENY = ApprovalOption("decline", "Deny (the agent is told and goes on)", OptionKind.DENY)
DENY_AND_STOP = ApprovalOption("cancel", "Deny and stop the turn", OptionKind.DENY_AND_STOP)
SESSION_FILES = ApprovalOption("acceptForSession",
                               "Allow changes to these files for this session",
                               OptionKind.ALLOW_SESSION)
SESSION_COMMAND = ApprovalOption("acceptForSession", "Allow this command for this session",
                                 OptionKind.ALLOW_SESSION)
AMEND_POLICY = "acceptWithExecpolicyAmendment"

# Notifications that carry nothing for the history (status flags, rate limits, the
# running diff whose content the file change items already hold).
QUIET = frozenset({
    "thread/status/changed", "account/rateLimits/updated", "turn/diff/updated",
    "remoteControl/status/changed", "thread/goal/cleared", "thread/started",
    "turn/started", "item/agentMessage/delta", "item/reasoning/summaryTextDelta",
    "item/reasoning/textDelta", "item/reasoning/summaryPartAdded",
    "item/commandExecution/outputDelta", "item/fileChange/outputDelta", "turn/plan/updated",
    "serverRequest/resolved", "thread/tokenUsage/updated", "turn/completed",
    "mcpServer/startupStatus/updated",
})
_STATUS = {"inProgress": "in_progress", "completed": "completed", "failed": "failed",
           "declined": "declined"}
_USAGE = {"inputTokens": "input_tokens", "cachedInputTokens": "cached_input_tokens",
          "outputTokens": "output_tokens", "reasoningOutputTokens": "reasoning_output_tokens"}


def _change_kind(kind: Any) -> str:
    # {"type": "add"} in the app-server; "add" in exec.
    return str(kind.get("type", "update")) if isinstance(kind, dict) else str(kind or "update")


def exec_item(item: dict[str, Any]) -> dict[str, Any] | None:
    """One app-server item in the shape ``codex exec --json`` prints it; None for an item
    aura does not show (the user's own message), ``{}`` for one it does not know."""
    kind = item.get("type")
    base = {"id": item.get("id"), "status": _STATUS.get(str(item.get("status")),
                                                      item.get("status"))}
    if kind == "agentMessage":
        return {**base, "type": "agent_message", "text": item.get("text") or ""}
    if kind == "reasoning":
        parts = item.get("summary") or item.get("content") or []
        text = "\n".join(p for p in parts if isinstance(p, str)) if isinstance(parts, list) \
            else str(parts)
        return {**base, "type": "reasoning", "text": text}
    if kind == "commandExecution":
        return {**base, "type": "command_execution", "command": item.get("command") or "",
                "aggregated_output": item.get("aggregatedOutput"),
                "exit_code": item.get("exitCode")}
    if kind == "fileChange":
        changes = [{"path": c.get("path", ""), "kind": _change_kind(c.get("kind"))}
                   for c in item.get("changes") or [] if isinstance(c, dict)]
        return {**base, "type": "file_change", "changes": changes}
    if kind == "mcpToolCall":
        return {**base, "type": "mcp_tool_call", "server": item.get("server"),
                "tool": item.get("tool"), "arguments": item.get("arguments"),
                "result": item.get("result"), "error": item.get("error")}
    if kind == "webSearch":
        return {**base, "type": "web_search", "query": item.get("query"),
                "action": item.get("action")}
    if kind == "collabAgentToolCall":
        return {**base, "type": "collab_tool_call", "prompt": item.get("prompt"),
                "tool": item.get("tool")}
    if kind == "userMessage":
        return None
    return {}


def user_text(item: dict[str, Any]) -> str:
    parts = item.get("content") or []
    return "".join(p.get("text", "") for p in parts
                   if isinstance(p, dict) and p.get("type") == "text")


class ItemTranslator:
    """Notifications of one app-server run → entries; approval requests → requests."""

    def __init__(self, parser: JsonEventParser, cwd: str) -> None:
        self.parser = parser
        self.cwd = cwd
        self.items: dict[str, dict[str, Any]] = {}  # started, not yet completed
        self.usage: dict[str, int] | None = None  # the thread's running total
        self.prompts_seen = 0  # user messages of the turn: the first is the prompt

    @property
    def error(self) -> str | None:
        return self.parser.error

    def thread(self, thread_id: str, resumed: bool) -> list[Entry]:
        """The thread is the native session (the exec parser's ``thread.started``)."""
        entries = self.parser.handle({"type": "thread.started", "thread_id": thread_id}, "")
        if resumed:
            entries = [{"kind": EntryKind.SYSTEM.value, "text": "codex thread resumed",
                        "data": {"thread_id": thread_id}}]
        return entries

    def notification(self, method: str, params: Any, line: str) -> list[Entry]:
        if not isinstance(params, dict):
            return [raw_entry(line)]
        if method in ("item/started", "item/completed"):
            item = params.get("item")
            return self._item(method, item, line) if isinstance(item, dict) \
                else [raw_entry(line)]
        if method == "thread/tokenUsage/updated":
            total = (params.get("tokenUsage") or {}).get("total") or {}
            self.usage = {ours: total[theirs] for theirs, ours in _USAGE.items()
                          if isinstance(total.get(theirs), int)}
            return []
        if method == "error":
            return self._error(params)
        if method in ("configWarning", "deprecationNotice"):
            return [{"kind": EntryKind.SYSTEM.value,
                     "text": f"codex: {params.get('summary') or method}"}]
        if method in QUIET:
            return []
        return [raw_entry(line)]

    def _item(self, method: str, item: dict[str, Any], line: str) -> list[Entry]:
        item_id = str(item.get("id", ""))
        if method == "item/started":
            self.items[item_id] = item
        else:
            self.items.pop(item_id, None)
        if item.get("type") == "userMessage":
            if method == "item/started":
                self.prompts_seen += 1
                if self.prompts_seen > 1:  # steered into the running turn
                    return [{"kind": EntryKind.USER_MESSAGE.value, "text": user_text(item),
                             "data": {"steer": True}}]
            return []
        converted = exec_item(item)
        if converted is None:
            return []
        if not converted:
            return [raw_entry(line)]
        kind = "item.started" if method == "item/started" else "item.completed"
        return self.parser.handle({"type": kind, "item": converted}, line)

    def _error(self, params: dict[str, Any]) -> list[Entry]:
        error = params.get("error")
        message = str((error.get("message") if isinstance(error, dict) else error) or "error")
        if params.get("willRetry"):
            return [{"kind": EntryKind.SYSTEM.value, "text": f"{message} (codex retries)"}]
        return self.parser.handle({"type": "error", "message": message}, "")

    def turn_completed(self, turn: dict[str, Any]) -> list[Entry]:
        """The turn's end: its usage, and why it did not complete where it did not."""
        status = turn.get("status")
        entries: list[Entry] = []
        if status == "failed":
            error = turn.get("error")
            message = (error.get("message") if isinstance(error, dict) else None) or \
                "turn failed"
            entries += self.parser.handle({"type": "turn.failed",
                                           "error": {"message": message}}, "")
        if self.usage is not None:
            error = self.parser.error
            entries += self.parser.handle({"type": "turn.completed", "usage": self.usage}, "")
            if status == "failed":
                self.parser.error = error  # the usage does not clear the failure
        if status == "interrupted":
            entries.append({"kind": EntryKind.SYSTEM.value, "text": "codex turn interrupted"})
        return entries + self.parser.finish()

    # -- approvals ----------------------------------------------------------------------

    def approval(self, method: str, request_id: Any, params: dict[str, Any]
                 ) -> ApprovalRequest:
        """The approval request codex sent, as aura's ``ApprovalRequest``."""
        native = str(request_id)
        base = {"item_id": params.get("itemId"), "turn_id": params.get("turnId")}
        if params.get("reason"):
            base["reason"] = params["reason"]
        if method == COMMAND_APPROVAL:
            command = str(params.get("command") or "")
            actions = params.get("commandActions") or []
            shown = actions[0].get("command") if len(actions) == 1 and \
                isinstance(actions[0], dict) and actions[0].get("command") else command
            options = [ALLOW_ONCE, SESSION_COMMAND, DENY, DENY_AND_STOP]
            amendment = params.get("proposedExecpolicyAmendment")
            if isinstance(amendment, list) and amendment:
                base["execpolicy_amendment"] = amendment
                options.insert(2, ApprovalOption(
                    AMEND_POLICY, f"Always allow commands starting with {' '.join(amendment)}",
                    OptionKind.ALLOW_ALWAYS))
            return ApprovalRequest(native, ApprovalKind.COMMAND, f"Run `{shown}`",
                                   {**base, "command": command, "cwd": params.get("cwd")},
                                   tuple(options))
        item = self.items.get(str(params.get("itemId")), {})
        changes = [c for c in item.get("changes") or [] if isinstance(c, dict)]
        paths = [str(c.get("path", "")) for c in changes]
        shown = ", ".join(self.parser.target(p) for p in paths) or "files"
        diff = "\n".join(f"--- {c.get('path', '')} ({_change_kind(c.get('kind'))})\n"
                         f"{c.get('diff', '')}" for c in changes)
        verb = "Write" if changes and all(_change_kind(c.get("kind")) == "add"
                                          for c in changes) else "Change"
        if params.get("grantRoot"):
            base["grant_root"] = params["grantRoot"]
        return ApprovalRequest(native, ApprovalKind.FILE_CHANGE, f"{verb} {shown}",
                               {**base, "paths": paths, "diff": diff},
                               (ALLOW_ONCE, SESSION_FILES, DENY, DENY_AND_STOP))


def answer(decision: Decision, request: ApprovalRequest) -> dict[str, Any]:
    """The result codex expects for ``decision``: the option it names, else by choice."""
    option = decision.option
    if option is not None and option.id == AMEND_POLICY:
        amendment = request.detail.get("execpolicy_amendment") or []
        return {"decision": {AMEND_POLICY: {"execpolicy_amendment": list(amendment)}}}
    known = {ALLOW_ONCE.id, SESSION_FILES.id, DENY.id, DENY_AND_STOP.id}
    if option is not None and option.id in known:
        return {"decision": option.id}
    by_choice = {"allow": ALLOW_ONCE.id, "allow_session": SESSION_FILES.id, "deny": DENY.id}
    return {"decision": by_choice[decision.choice.value]}
