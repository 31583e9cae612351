"""The terminal UI (presentation): the application, its state, panes, slash commands and keys."""
