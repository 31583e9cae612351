#!/usr/bin/env python3
"""A chatty fake agent: prints COUNT numbered lines in bursts of BURST with PAUSE seconds
between bursts (so a test can act mid-stream), then a usage entry. It also says whether
the coordinator's token leaked into its environment.

usage: lines_agent.py COUNT [BURST] [PAUSE]
"""

import json
import os
import sys
import time

count = int(sys.argv[1])
burst = int(sys.argv[2]) if len(sys.argv) > 2 else count
pause = float(sys.argv[3]) if len(sys.argv) > 3 else 0.0
print(json.dumps({"kind": "system", "text": "token in env: "
                  + ("yes" if "AURA_TOKEN" in os.environ else "no")}), flush=True)
out = sys.stdout
for i in range(1, count + 1):
    out.write(f"line {i}\n")
    if i % burst == 0:
        out.flush()
        if pause:
            time.sleep(pause)
out.flush()
print(json.dumps({"kind": "usage", "usage": {"input_tokens": 1, "output_tokens": count}}),
      flush=True)
