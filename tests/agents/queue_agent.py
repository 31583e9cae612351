"""A fake agent for the queue tests: logs its start and end (name, pid, time) as JSON
lines to LOG, sleeps SECONDS, prints a line and exits with CODE.

usage: queue_agent.py LOG NAME SECONDS [CODE]
"""

import json
import os
import sys
import time

log, name, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
code = int(sys.argv[4]) if len(sys.argv) > 4 and sys.argv[4].lstrip("-").isdigit() else 0


def note(event: str) -> None:
    with open(log, "a") as fh:
        fh.write(json.dumps({"name": name, "event": event, "pid": os.getpid(),
                             "t": time.time()}) + "\n")


note("start")
print(f"working on {name}", flush=True)
time.sleep(seconds)
note("end")
print(f"finished {name}", flush=True)
sys.exit(code)
