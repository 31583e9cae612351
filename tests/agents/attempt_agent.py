"""A fake agent for best-of-N runs: takes the next number from a shared counter file
(under a lock, as attempts run at once) and writes it to solution.txt, uncommitted.

    attempt_agent.py COUNTER_FILE
"""

import fcntl
import sys

with open(sys.argv[1], "a+") as fh:
    fcntl.flock(fh, fcntl.LOCK_EX)
    fh.seek(0)
    number = len(fh.read().splitlines()) + 1
    fh.write(f"{number}\n")
with open("solution.txt", "w") as out:
    out.write(f"{number}\n")
print(f"wrote solution {number}", flush=True)
