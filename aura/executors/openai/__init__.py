"""aura.executors.openai."""
