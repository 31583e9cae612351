"""aura.service."""
