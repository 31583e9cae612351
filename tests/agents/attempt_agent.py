"""A fake agent for best-of-N runs: takes the next number from a shared counter file
(under a lock, as attempts run at once), writes it to solution.txt, uncommitted, and
reports usage that grows with it.

    attempt_agent.py COUNTER_FILE
"""

import fcntl
import json
import sys

with open(sys.argv[1], "a+") as fh:
    fcntl.flock(fh, fcntl.LOCK_EX)
    fh.seek(0)
    number = len(fh.read().splitlines()) + 1
    fh.write(f"{number}\n")
with open("solution.txt", "w") as out:
    out.write(f"{number}\n")
print(f"wrote solution {number}", flush=True)
# What it cost: a cent per number, and 100 tokens in, 10 * number out.
print(json.dumps({"kind": "usage", "usage": {"input_tokens": 100,
                                             "output_tokens": 10 * number,
                                             "cost_usd": number / 100}}), flush=True)
