"""A fake aura-native agent for the TUI tests (run by `--executor custom`).

Every turn: a thinking entry, a tool call (start, then end), an echo of the prompt.
The prompt picks the rest: `slow …` waits two minutes (to be cancelled), `flood N` prints
N numbered lines as fast as it can, `fail …` reports an error and exits 3, `rich …`
answers with wide (CJK, emoji) text and a fenced code block, reports a cost and writes
notes.txt in its directory, `tick N` prints ``tick i`` every half second N times (a run
to watch from another terminal) and reports usage after the first.
"""

import json
import os
import sys
import time

prompt = os.environ.get("AURA_PROMPT", "")


def out(**entry: object) -> None:
    print(json.dumps(entry), flush=True)


out(kind="thinking", text="Let me think about this\nsecond line of thought")
out(kind="tool_call", id="t1", tool="Write", action="file_write", target="hello.txt",
    status="running")
out(kind="tool_call", id="t1", tool="Write", action="file_write", target="hello.txt",
    status="ok")
print("echo: " + prompt, flush=True)
if prompt.startswith("flood"):
    count = int(prompt.split()[-1])
    sys.stdout.write("".join(f"line {i:06d}\n" for i in range(1, count + 1)))
    sys.stdout.flush()
if prompt.startswith("fail"):
    out(kind="error", text="something went wrong")
    sys.exit(3)
if prompt.startswith("rich"):
    out(kind="assistant_message", text="漢" * 150 + " END\n" + "🙂" * 50 + " SMILE\n"
        "Here is code:\n```python\ndef hello():\n    return 42\n```\nafter the code")
    out(kind="usage", usage={"input_tokens": 1200, "output_tokens": 340, "cost_usd": 0.0123})
    with open("notes.txt", "w") as notes:
        notes.write("from the agent\n")
if prompt.startswith("tick"):
    for i in range(1, int(prompt.split()[-1]) + 1):
        print(f"tick {i}", flush=True)
        if i == 1:
            out(kind="usage", usage={"input_tokens": 100, "output_tokens": 50, "cost_usd": 0.5})
        time.sleep(0.5)
if prompt.startswith("slow"):
    print("waiting for a long time", flush=True)
    time.sleep(120)
out(kind="usage", usage={"input_tokens": 10, "output_tokens": 5})
