#!/usr/bin/env python3
"""A tiny aura-native agent: reads the task from AURA_PROMPT and answers in aura's entry
format (one JSON object per line), so `aura run` shows a tool call and a reply."""

import json
import os
import time

prompt = os.environ.get("AURA_PROMPT", "")
print(json.dumps({"kind": "thinking", "text": f"The task is: {prompt}"}), flush=True)
time.sleep(0.2)
print(json.dumps({"kind": "tool_call", "tool": "shell", "action": "command",
                  "target": "ls", "status": "ok", "output": "\n".join(sorted(os.listdir())) }),
      flush=True)
print(f"You asked: {prompt}. Done.", flush=True)
print(json.dumps({"kind": "usage", "usage": {"input_tokens": len(prompt.split()),
                                             "output_tokens": 4}}), flush=True)
