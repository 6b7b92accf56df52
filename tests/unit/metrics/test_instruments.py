"""The multiprocess directory's bookkeeping: which files belong to processes gone."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.metrics import instruments


def ended_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    return int(proc.stdout)


def test_prune_removes_only_the_files_of_processes_that_ended(tmp_path: Path) -> None:
    gone, alive = ended_pid(), os.getpid()
    kept = [f"counter_{alive}.db", f"gauge_livemax_{alive}.db", "notes.txt", "counter_x.db"]
    names = [f"counter_{gone}.db", f"histogram_{gone}.db", f"gauge_livesum_{gone}.db", *kept]
    for name in names:
        (tmp_path / name).write_bytes(b"")
    assert instruments.prune(tmp_path) == 1
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted(kept)


def test_the_mode_cannot_change_once_metrics_are_recorded(tmp_path: Path) -> None:
    instruments.configure(None)  # the in-memory mode the test process runs in
    instruments.log_lines_published(1)
    with pytest.raises(RuntimeError, match="SLIPWAY_METRICS_DIR"):
        instruments.configure(tmp_path / "metrics")
    assert instruments.directory() is None
    assert "PROMETHEUS_MULTIPROC_DIR" not in os.environ


def test_webhook_outcomes_outside_the_known_set_are_one_label() -> None:
    registry = instruments.LOCAL
    instruments.webhook_delivered("github", "x" * 40)
    instruments.webhook_delivered("github", "y" * 40)
    labels = {
        tuple(sorted(s.labels.items()))
        for m in registry.collect()
        if m.name == "slipway_webhook_deliveries"
        for s in m.samples
    }
    assert (("outcome", "other"), ("provider", "github")) in labels
    assert not any("x" * 40 in str(ls) or "y" * 40 in str(ls) for ls in labels)
