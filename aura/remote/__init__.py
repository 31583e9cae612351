"""Runs on other machines: the coordinator (`aura serve`), the worker (`aura worker`) and the
client side of `--on` / `--coordinator`, over aura.rpc."""
