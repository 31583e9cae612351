"""Agents and model servers aura can run; see registry.py for the names."""

__all__: list[str] = []
