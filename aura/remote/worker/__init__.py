"""aura.remote.worker."""
