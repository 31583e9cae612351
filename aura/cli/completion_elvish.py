"""Completion classes click lacks: elvish, and fish keeping aura's order.

Imported only in completion mode (``aura completion …`` or ``_AURA_COMPLETE`` set).

Elvish protocol (same shape as click's shells): the script's arg-completer sends the words
after the program name as a JSON array in ``_AURA_ELVISH_WORDS`` (elvish passes ``''`` for a
fresh word, so the last word is always the incomplete one) and reads back one
``type<TAB>value<TAB>help`` line per candidate; ``file``/``dir`` types fall back to elvish's
own filename completion. A completed word gets a space after it (``&code-suffix``), as in
the other shells: the next word is typed apart, not glued on.

Fish: click's script lets fish sort candidates alphabetically, which would scatter session
ids; ``--keep-order`` keeps them newest first. The request/response protocol is click's.
"""

from __future__ import annotations

import json
import os
from typing import Any, ClassVar

from click.shell_completion import CompletionItem, FishComplete, ShellComplete

WORDS_VAR = "_AURA_ELVISH_WORDS"

_SOURCE_ELVISH = """\
use str

set edit:completion:arg-completer[%(prog_name)s] = {|@words|
    var request = (put $words[1..] | to-json)
    var response = [(env %(complete_var)s=elvish_complete %(words_var)s=$request %(prog_name)s)]
    for line $response {
        var parts = [(str:split "\\t" $line)]
        if (< (count $parts) 3) { continue }
        var type value help = $@parts
        if (or (eq $type file) (eq $type dir)) {
            edit:complete-filename $words[-1]
        } elif (eq $type plain) {
            if (eq $help _) {
                edit:complex-candidate $value &code-suffix=' '
            } else {
                edit:complex-candidate $value &code-suffix=' ' &display=$value' ('$help')'
            }
        }
    }
}
"""


def _clean(text: str) -> str:
    # One candidate per line, three tab-separated fields: no tabs or newlines inside.
    return " ".join(text.replace("\t", " ").splitlines())


class ElvishComplete(ShellComplete):
    """Shell completion for elvish (0.19+)."""

    name: ClassVar[str] = "elvish"
    source_template: ClassVar[str] = _SOURCE_ELVISH

    def source_vars(self) -> Any:
        data = dict(super().source_vars())
        data["words_var"] = WORDS_VAR
        return data

    def get_completion_args(self) -> tuple[list[str], str]:
        try:
            words = json.loads(os.environ.get(WORDS_VAR, "[]"))
        except ValueError:
            words = []
        words = [str(w) for w in words] if isinstance(words, list) else []
        if not words:
            return [], ""
        return words[:-1], words[-1]

    def format_completion(self, item: CompletionItem) -> str:
        return f"{item.type}\t{_clean(str(item.value))}\t{_clean(item.help) if item.help else '_'}"


class FishKeepOrderComplete(FishComplete):
    """click's fish completion, with candidates shown in the order aura gives them."""

    name: ClassVar[str] = "fish"

    def source(self) -> str:
        text = super().source()
        return text.replace("complete --no-files --command",
                            "complete --keep-order --no-files --command")
