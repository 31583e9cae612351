"""aura.remote.coordinator."""
