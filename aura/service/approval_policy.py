"""Approval policy: the rules that answer an agent's request before a person is asked.

Rules come from the config and the repository's ``.aura.toml`` (the same shape in both),
from the approval flags of `aura run` (``--yolo``…), and from "allow for this session"
answers remembered in the session's options::

    [approvals]
    allow = [
      { tool = "Read" },                      # a tool by name (a glob, any case)
      { command = "git status" },             # a command starting with these words
      { path = "docs/**", kind = "file_change" },  # every path under docs/
    ]
    deny = [
      { command = "rm -rf", message = "never delete trees; ask first" },
      { path = ".env*" },
    ]

A rule matches when every field it names matches (``kind`` is one of command,
file_change, permission, tool, question). Deny rules win over allow rules. To keep an allow
rule from approving more than it says, a command with shell operators (``;``, ``&&``,
``|``, redirections, ``$(…)``, backquotes) never matches an allow rule, and a path outside
the agent's directory never matches one; a deny rule matches any part of such a command.
"""

from __future__ import annotations

import fnmatch
import os
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aura.approvals import ApprovalKind, ApprovalRequest, Choice
from aura.errors import ConfigError

_FIELDS = ("tool", "command", "path", "kind", "message")
_OPERATORS = (";", "&", "|", ">", "<", "`", "$(", "\n")
_SHELLS = {"sh", "bash", "zsh", "dash", "/bin/sh", "/bin/bash", "/usr/bin/bash", "/bin/zsh"}


@dataclass(frozen=True, slots=True)
class Rule:
    decision: Choice  # ALLOW or DENY
    source: str  # where it comes from: "config", ".aura.toml", "--yolo", "session"
    tool: str | None = None
    command: str | None = None  # a prefix, word by word
    path: str | None = None  # a glob relative to the agent's directory
    kind: ApprovalKind | None = None
    title: str | None = None  # exact title (session rules of requests with nothing else)
    message: str | None = None  # told to the agent with a deny

    def describe(self) -> str:
        """How `session show` names the rule: "deny command `rm -rf` (.aura.toml)"."""
        parts = [f"kind {self.kind.value}"] if self.kind else []
        parts += [f"tool {self.tool}"] if self.tool else []
        parts += [f"command `{self.command}`"] if self.command else []
        parts += [f"path {self.path}"] if self.path else []
        parts += [f"{self.title!r}"] if self.title else []
        what = " ".join(parts) or "everything"
        return f"{self.decision.value} {what} ({self.source})"

    def matches(self, request: ApprovalRequest, cwd: str) -> bool:
        allow = self.decision is not Choice.DENY
        if self.kind is not None and request.kind is not self.kind:
            return False
        if self.title is not None and request.title != self.title:
            return False
        if self.tool is not None:
            tool = request.detail.get("tool")
            if not isinstance(tool, str) or \
                    not fnmatch.fnmatchcase(tool.lower(), self.tool.lower()):
                return False
        if self.command is not None and not _command_matches(
                request.detail.get("command"), self.command, allow):
            return False
        return self.path is None or _paths_match(
            request_paths(request), self.path, str(request.detail.get("cwd") or cwd), allow)

    def to_json(self) -> dict[str, Any]:
        """What a session remembers (its options' ``approval_rules``)."""
        fields = {"tool": self.tool, "command": self.command, "path": self.path,
                  "kind": self.kind.value if self.kind else None, "title": self.title}
        return {k: v for k, v in fields.items() if v is not None}


@dataclass(frozen=True, slots=True)
class Policy:
    rules: tuple[Rule, ...] = ()

    def decide(self, request: ApprovalRequest, cwd: str) -> Rule | None:
        """The rule that answers ``request`` (deny rules first), or None: ask a person."""
        for wanted in (Choice.DENY, Choice.ALLOW):
            for rule in self.rules:
                if (rule.decision is Choice.DENY) == (wanted is Choice.DENY) and \
                        rule.matches(request, cwd):
                    return rule
        return None

    def plus(self, rules: Iterable[Rule]) -> Policy:
        return Policy((*self.rules, *rules))


def request_paths(request: ApprovalRequest) -> list[str]:
    paths = request.detail.get("paths")
    if isinstance(paths, list):
        return [p for p in paths if isinstance(p, str)]
    path = request.detail.get("path")
    return [path] if isinstance(path, str) else []


def command_text(command: object) -> str | None:
    if isinstance(command, str):
        return command
    if isinstance(command, list) and all(isinstance(c, str) for c in command):
        return shlex.join(command)
    return None


def _unwrap(words: list[str]) -> list[str]:
    """``bash -lc 'make test'`` is the command ``make test``."""
    if len(words) == 3 and words[0] in _SHELLS and words[1] in ("-c", "-lc"):
        try:
            return shlex.split(words[2])
        except ValueError:
            return words
    return words


def _segments(text: str) -> list[list[str]] | None:
    """The simple commands of ``text`` (split on shell operators), None when unparseable."""
    lexer = shlex.shlex(text, posix=True, punctuation_chars=";&|<>()")
    lexer.whitespace_split = True
    try:
        tokens = list(lexer)
    except ValueError:
        return None
    segments: list[list[str]] = [[]]
    for token in tokens:
        if token and set(token) <= set(";&|<>()"):
            segments.append([])
        else:
            segments[-1].append(token)
    return [_unwrap(s) for s in segments if s]


def _command_matches(command: object, prefix: str, allow: bool) -> bool:
    text = command_text(command)
    if text is None:
        return False
    wanted = shlex.split(prefix) if prefix.strip() else []
    segments = _segments(text)
    if allow:
        words = _unwrap(shlex.split(text)) if segments is not None and \
            not any(op in text for op in _OPERATORS) else None
        if words is not None and any(op in " ".join(words) for op in _OPERATORS):
            words = None  # the shell wrapper's script had operators of its own
        return words is not None and words[:len(wanted)] == wanted
    if segments is None:
        return prefix in text
    return any(s[:len(wanted)] == wanted for s in segments)


def _paths_match(paths: Sequence[str], glob: str, cwd: str, allow: bool) -> bool:
    if not paths:
        return False
    relative = []
    for path in paths:
        absolute = os.path.normpath(os.path.join(cwd, path))
        rel = os.path.relpath(absolute, cwd)
        relative.append((rel, absolute, rel == ".." or rel.startswith(".." + os.sep)))
    if allow:
        return all(not outside and fnmatch.fnmatchcase(rel, glob)
                   for rel, _a, outside in relative)
    return any(fnmatch.fnmatchcase(rel, glob) or fnmatch.fnmatchcase(absolute, glob)
               for rel, absolute, _o in relative)


# building policies ---------------------------------------------------------------------

def rules_from_table(table: object, source: str) -> list[Rule]:
    """The ``[approvals]`` table of a config file; ConfigError naming ``source``."""
    if table is None:
        return []
    if not isinstance(table, Mapping):
        raise ConfigError(f"{source}: [approvals] must be a table")
    unknown = sorted(set(table) - {"allow", "deny"})
    if unknown:
        raise ConfigError(f"{source}: [approvals] has unknown key(s) {', '.join(unknown)} "
                          "(allow, deny)")
    rules = []
    for key, decision in (("deny", Choice.DENY), ("allow", Choice.ALLOW)):
        items = table.get(key, [])
        if not isinstance(items, list):
            raise ConfigError(f"{source}: approvals.{key} must be a list of tables")
        rules += [_rule(item, decision, source, f"approvals.{key}[{i}]")
                  for i, item in enumerate(items)]
    return rules


def _rule(item: object, decision: Choice, source: str, where: str) -> Rule:
    if not isinstance(item, Mapping):
        raise ConfigError(f"{source}: {where} must be a table like {{ tool = \"Read\" }}")
    unknown = sorted(set(item) - set(_FIELDS))
    if unknown:
        raise ConfigError(f"{source}: {where} has unknown key(s) {', '.join(unknown)} "
                          f"({', '.join(_FIELDS)})")
    if not any(item.get(k) for k in ("tool", "command", "path", "kind")):
        raise ConfigError(f"{source}: {where} names nothing to match (tool, command, path "
                          "or kind); a rule for everything is `tool = \"*\"`")
    if not all(isinstance(v, str) for v in item.values()):
        raise ConfigError(f"{source}: {where}: every value is a string")
    try:
        kind = ApprovalKind(item["kind"]) if item.get("kind") else None
    except ValueError:
        raise ConfigError(f"{source}: {where}: kind {item['kind']!r} is not one of "
                          f"{', '.join(k.value for k in ApprovalKind)}") from None
    if item.get("command"):
        try:
            shlex.split(item["command"])
        except ValueError as exc:
            raise ConfigError(f"{source}: {where}: cannot parse command: {exc}") from None
    return Rule(decision, source, tool=item.get("tool") or None,
                command=item.get("command") or None, path=item.get("path") or None,
                kind=kind, message=item.get("message") or None)


def rules_from_flags(approvals: Any) -> list[Rule]:
    """`aura run`'s approval flags (aura.executors.base.Approvals) as rules."""
    rules = [Rule(Choice.DENY, "--deny-tool", tool=t) for t in approvals.deny_tools]
    for flag, on in (("--yolo", approvals.yolo), ("--auto-approve", approvals.auto_approve),
                     ("--allow-all-tools", approvals.allow_all_tools)):
        if on:
            rules.append(Rule(Choice.ALLOW, flag))  # names nothing: matches everything
    if approvals.force:
        rules.append(Rule(Choice.ALLOW, "--force", kind=ApprovalKind.COMMAND))
    rules += [Rule(Choice.ALLOW, "--allow-tool", tool=t) for t in approvals.allow_tools]
    return rules


def session_rules(options: Mapping[str, Any]) -> list[Rule]:
    """The "allow for this session" answers a session remembers."""
    rules = []
    for item in options.get("approval_rules") or []:
        if not isinstance(item, dict):
            continue
        try:
            kind = ApprovalKind(item["kind"]) if item.get("kind") else None
        except ValueError:
            continue  # written by a newer aura: ask instead
        rules.append(Rule(Choice.ALLOW, "allowed for this session", tool=item.get("tool"),
                          command=item.get("command"), path=item.get("path"), kind=kind,
                          title=item.get("title")))
    return rules


def session_rule_for(request: ApprovalRequest) -> Rule:
    """What "allow for this session" remembers: every file change (as gemini and qwen
    mean it), a command by its program, a tool by its name, else the exact request."""
    source = "allowed for this session"
    if request.kind is ApprovalKind.FILE_CHANGE:
        return Rule(Choice.ALLOW, source, kind=request.kind)
    text = command_text(request.detail.get("command"))
    if request.kind is ApprovalKind.COMMAND and text:
        segments = _segments(text)
        program = segments[0][0] if segments and segments[0] else None
        if program:
            return Rule(Choice.ALLOW, source, kind=request.kind, command=shlex.quote(program))
    tool = request.detail.get("tool")
    if isinstance(tool, str) and tool:
        return Rule(Choice.ALLOW, source, kind=request.kind, tool=tool)
    return Rule(Choice.ALLOW, source, kind=request.kind, title=request.title)
