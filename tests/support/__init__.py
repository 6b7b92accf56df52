"""Helpers that tests run in processes of their own (e.g. a worker with fake adapters)."""
