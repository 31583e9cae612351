"""The Agent Client Protocol: the client over an agent's stdio, and update → entry translation."""
