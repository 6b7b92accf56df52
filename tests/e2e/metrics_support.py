"""Scraping ``/metrics`` over real HTTP and reading it with prometheus-client's own parser."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
from prometheus_client.parser import text_string_to_metric_families

Key = tuple[str, frozenset[tuple[str, str]]]


@dataclass(frozen=True)
class Scrape:
    """One scrape: every sample by name and labels, and every family's name and type."""

    samples: dict[Key, float]
    families: dict[str, str]

    @classmethod
    def parse(cls, text: str) -> Scrape:
        samples: dict[Key, float] = {}
        families: dict[str, str] = {}
        for family in text_string_to_metric_families(text):
            families[family.name] = family.type
            for sample in family.samples:
                samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
        return cls(samples, families)

    def value(self, name: str, **labels: str) -> float:
        """The sample with exactly these labels (0 when absent: a counter not yet touched)."""
        return self.samples.get((name, frozenset(labels.items())), 0.0)

    def total(self, name: str, **labels: str) -> float:
        """The sum over every sample of ``name`` whose labels include ``labels``."""
        want = set(labels.items())
        return sum(v for (n, ls), v in self.samples.items() if n == name and want <= ls)

    def labels_of(self, name: str) -> list[dict[str, str]]:
        return [dict(ls) for (n, ls) in self.samples if n == name]


def metrics_url(base: str) -> str:
    """``http://host:port/graphql`` or ``http://host:port`` → ``…/metrics``."""
    return base.removesuffix("/graphql").rstrip("/") + "/metrics"


def scrape(base: str, *, key: str | None = None, token: str | None = None) -> Scrape:
    headers = {"x-api-key": key} if key else {}
    if token:
        headers["authorization"] = f"Bearer {token}"
    res = httpx.get(metrics_url(base), headers=headers, timeout=30)
    assert res.status_code == 200, res.text
    assert res.headers["content-type"].startswith("text/plain; version=0.0.4")
    return Scrape.parse(res.text)


def scrape_until(
    base: str, key: str, check: Callable[[Scrape], bool], timeout: float = 30
) -> Scrape:
    """Scrape until ``check`` holds (the queue gauges are cached for a second)."""
    deadline = time.monotonic() + timeout
    while True:
        got = scrape(base, key=key)
        if check(got):
            return got
        assert time.monotonic() < deadline, f"never held; last scrape: {got.samples}"
        time.sleep(0.2)
