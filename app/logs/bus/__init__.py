"""Buses carry messages from whoever publishes them to this process's hub."""
