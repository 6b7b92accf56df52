"""A stats document of the Engine API as figures (CPU % as docker stats computes it)."""

from __future__ import annotations

from app.runtime.stats import sample

RAW = {
    "cpu_stats": {
        "cpu_usage": {"total_usage": 3_000_000_000},
        "system_cpu_usage": 20_000_000_000,
        "online_cpus": 2,
    },
    "precpu_stats": {
        "cpu_usage": {"total_usage": 2_000_000_000},
        "system_cpu_usage": 10_000_000_000,
    },
    "memory_stats": {
        "usage": 50_000_000,
        "limit": 1_000_000_000,
        "stats": {"inactive_file": 10_000_000},
    },
    "networks": {"eth0": {"rx_bytes": 100, "tx_bytes": 7}, "eth1": {"rx_bytes": 5, "tx_bytes": 3}},
}


def test_figures_from_a_stats_document() -> None:
    s = sample(RAW, task_id="t", container_id="c")
    assert s.cpu_percent == 20.0  # 1 s of CPU over 10 s of system time, on 2 cores
    assert s.memory_bytes == 40_000_000 and s.memory_limit_bytes == 1_000_000_000
    assert (s.network_rx_bytes, s.network_tx_bytes) == (105, 10)


def test_the_first_document_without_a_previous_one_is_zero_cpu() -> None:
    s = sample({"cpu_stats": RAW["cpu_stats"], "memory_stats": {}}, task_id="t", container_id="c")
    assert s.cpu_percent == 0.0 and s.memory_bytes == 0 and s.network_rx_bytes == 0
