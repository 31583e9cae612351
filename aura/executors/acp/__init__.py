"""aura.executors.acp."""
