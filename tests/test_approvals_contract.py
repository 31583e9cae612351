"""The approvals contract: how agents' offered options are read and picked."""

from __future__ import annotations

from aura.approvals import ApprovalOption, Choice, OptionKind, classify, pick

# The options each agent offered in the recorded exchanges (../shared research, approvals).
GEMINI = [("proceed_always", "allow_always", "Allow for this session"),
          ("proceed_once", "allow_once", "Allow"), ("cancel", "reject_once", "Reject")]
QWEN_SHELL = [("proceed_always_project", "allow_always", "Always Allow in project: printf *"),
              ("proceed_always_user", "allow_always", "Always Allow for user: printf *"),
              ("proceed_once", "allow_once", "Allow"), ("cancel", "reject_once", "Reject")]
COPILOT = [("allow_once", "allow_once", "Allow once"),
           ("allow_always", "allow_always", "Always allow"), ("reject_once", "reject_once", "Deny")]
OPENCODE = [("once", "allow_once", "Allow once"), ("always", "allow_always", "Always allow"),
            ("reject", "reject_once", "Reject")]
DROID = [("proceed_once", "allow_once", "Allow"),
         ("proceed_always", "allow_always", "Allow & auto-run low/medium risk commands"),
         ("cancel", "reject_once", "No, cancel")]


def options(offered: list[tuple[str, str, str]]) -> list[ApprovalOption]:
    return [ApprovalOption(i, label, classify(kind, label)) for i, kind, label in offered]


def test_allow_and_deny_pick_the_agents_own_ids() -> None:
    expected = {"gemini": ("proceed_once", "cancel"), "qwen": ("proceed_once", "cancel"),
                "copilot": ("allow_once", "reject_once"), "opencode": ("once", "reject"),
                "droid": ("proceed_once", "cancel")}
    for name, offered in (("gemini", GEMINI), ("qwen", QWEN_SHELL), ("copilot", COPILOT),
                          ("opencode", OPENCODE), ("droid", DROID)):
        allow, deny = pick(options(offered), Choice.ALLOW), pick(options(offered), Choice.DENY)
        assert allow is not None and deny is not None
        assert (allow.id, deny.id) == expected[name], name


def test_an_always_option_is_never_taken_for_this_session_by_its_kind_alone() -> None:
    assert pick(options(GEMINI), Choice.ALLOW_SESSION) == \
        ApprovalOption("proceed_always", "Allow for this session", OptionKind.ALLOW_SESSION)
    for offered in (QWEN_SHELL, COPILOT, OPENCODE, DROID):
        assert pick(options(offered), Choice.ALLOW_SESSION) is None
        assert {o.kind for o in options(offered)} >= {OptionKind.ALLOW_ALWAYS}
