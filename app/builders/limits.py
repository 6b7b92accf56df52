"""Memory and CPU limits of an image build, as the Engine API's classic builder takes them.

The classic builder (``POST /build``) applies ``memory``, ``memswap``, ``cpuperiod`` and
``cpuquota`` to the container of every ``RUN`` step: the limits are exact, swap is off
(``memswap`` equals ``memory``), and the CPU limit is a CFS quota of ``cores`` × the period.
BuildKit in Docker 20.10 accepts ``--memory`` and ``--cpu-quota`` and ignores them (its
steps run in the engine's own BuildKit worker), so a BuildKit build runs unlimited and
says so in its log.
"""

from __future__ import annotations

from typing import Any

import docker.constants

CPU_PERIOD_US = 100_000
# The Engine API's /build takes cpuperiod and cpuquota; docker-py checks container_limits
# keys against this list, which lacks them.
_ENGINE_BUILD_LIMITS = ("cpuperiod", "cpuquota")


def classic_limits(memory: int | None, cpus: float | None) -> dict[str, Any]:
    """``container_limits`` for ``APIClient.build``: bytes of memory, cores of CPU."""
    limits: dict[str, Any] = {}
    if memory:
        limits |= {"memory": int(memory), "memswap": int(memory)}
    if cpus:
        limits |= {"cpuperiod": CPU_PERIOD_US, "cpuquota": max(1000, round(cpus * CPU_PERIOD_US))}
    return limits


def allow_engine_limits() -> None:
    """Let docker-py pass the Engine API's CPU quota parameters of ``/build``."""
    keys = docker.constants.CONTAINER_LIMITS_KEYS
    keys.extend(key for key in _ENGINE_BUILD_LIMITS if key not in keys)


def describe_limits(memory: int | None, cpus: float | None) -> str | None:
    """``memory 512 MiB, 1.5 CPUs`` for the log, or None without limits."""
    parts = []
    if memory:
        parts.append(f"memory {memory // (1024 * 1024)} MiB")
    if cpus:
        parts.append(f"{cpus:g} CPUs")
    return ", ".join(parts) or None
