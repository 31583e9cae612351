"""Use cases (no click, no printing): run options, running a turn and its pipeline, sessions,
the board, workspaces, model listing, the executor inventory, the health checks."""
