"""`aura` with the test executor ``fakeapprove`` (tests/approval_agent.py) registered."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.approval_agent import register

register()

from aura.cli.app import main  # noqa: E402

main()
