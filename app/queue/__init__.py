"""Dramatiq: the broker, the deployment actor, admission and the watchdog."""
