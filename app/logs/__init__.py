"""Deployment logs: one writer per deployment, a file that is kept, and a live bus."""
