"""aura.tui."""
