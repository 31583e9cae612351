"""The worker (`aura worker`): its link to the coordinator, its relay and spool, its policy."""
