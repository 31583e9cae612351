"""The command line (presentation): one module per command group, rendering, pickers,
completion. Only this package and aura.tui import click, questionary or prompt_toolkit."""
