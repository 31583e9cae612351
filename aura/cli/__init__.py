"""aura.cli."""
