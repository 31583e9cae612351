"""The coordinator (`aura serve`): sockets and auth, the worker registry, one record per run,
the relay and mirror of what workers report, the followers' feed."""
