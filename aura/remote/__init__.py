"""aura.remote."""
