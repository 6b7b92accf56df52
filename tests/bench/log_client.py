"""Subscribers of ``deploymentLogs`` in a process of their own, for the streaming benchmark.

    python -m tests.bench.log_client URL KEY DEPLOYMENT_ID --subscribers 50

Prints ``READY`` once every subscription has received its first batch (so it is
registered on the server's hub), then, when all streams have completed or the timeout
passed, one JSON line: ``{"cpu_s": <this process's CPU seconds>, "reports": [...]}`` with
one report per subscriber.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from websockets.asyncio.client import connect

QUERY = """
subscription($id: ID!) { deploymentLogs(deploymentId: $id, afterSeq: 0) { %s } }"""
FIELDS = "seq message"


@dataclass
class Report:
    count: int = 0
    unique: int = 0
    max_seq: int = 0
    in_order: bool = True
    frames: int = 0
    first_receipt: float = 0.0
    last_receipt: float = 0.0
    completed: bool = False
    error: str | None = None
    latencies: list[float] = field(default_factory=list)  # seconds, every `sample`-th line


class Follower:
    def __init__(self, sample: int) -> None:
        self.sample = sample
        self.report = Report()
        # Built only once lines arrive out of order: until then seqs 1..max_seq are the
        # unique lines seen, and a set of every seq would cost this client's CPU (which the
        # server on the same 2 cores then lacks).
        self.seen: set[int] | None = None
        self.first = asyncio.Event()

    def take(self, lines: list[dict[str, Any]], now: float) -> None:
        rep = self.report
        rep.frames += 1
        rep.first_receipt = rep.first_receipt or now
        rep.last_receipt = now
        if not lines:
            return
        seqs = [line["seq"] for line in lines]
        rep.count += len(seqs)
        if self.seen is None and seqs == list(range(rep.max_seq + 1, rep.max_seq + 1 + len(seqs))):
            rep.max_seq = rep.unique = seqs[-1]
        else:
            rep.in_order = False
            if self.seen is None:
                self.seen = set(range(1, rep.max_seq + 1))
            self.seen.update(seqs)
            rep.max_seq = max(rep.max_seq, max(seqs))
            rep.unique = len(self.seen)
        # Every `sample`-th seq (exactly so while in order): the write time is in the text.
        for line in lines[(-seqs[0]) % self.sample :: self.sample]:
            message: str = line["message"]
            if message.startswith("t="):
                wrote = float(message[2 : message.index(" ")])
                rep.latencies.append(round(now - wrote, 6))
        self.first.set()

    async def run(
        self, url: str, key: str, deployment_id: str, *, deflate: bool, fields: str = FIELDS
    ) -> None:
        # No client keepalive: a busy server answers pings late, and the benchmark should
        # measure that as latency, not turn it into disconnects.
        async with connect(
            url,
            subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
            max_size=None,
            ping_interval=None,
            compression="deflate" if deflate else None,
        ) as ws:
            await ws.send(json.dumps({"type": "connection_init", "payload": {"apiKey": key}}))
            ack = json.loads(await ws.recv())
            if ack.get("type") != "connection_ack":
                raise RuntimeError(f"expected connection_ack, got {ack}")
            payload = {"query": QUERY % fields, "variables": {"id": deployment_id}}
            await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
            async for raw in ws:
                now = time.time()
                msg = json.loads(raw)
                if msg["type"] == "next":
                    if msg["payload"].get("errors"):
                        raise RuntimeError(json.dumps(msg["payload"]["errors"]))
                    self.take(msg["payload"]["data"]["deploymentLogs"], now)
                elif msg["type"] == "complete":
                    self.report.completed = True
                    return
                elif msg["type"] == "error":
                    raise RuntimeError(json.dumps(msg["payload"]))
                elif msg["type"] == "ping":
                    await ws.send(json.dumps({"type": "pong"}))


async def _guarded(follower: Follower, args: argparse.Namespace) -> None:
    try:
        await follower.run(
            args.url, args.key, args.deployment, deflate=not args.no_deflate, fields=args.fields
        )
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which fails the test
        follower.report.error = f"{exc.__class__.__name__}: {exc}"
        follower.first.set()


async def main(args: argparse.Namespace) -> list[Report]:
    followers = [Follower(args.sample) for _ in range(args.subscribers)]
    tasks = [asyncio.create_task(_guarded(f, args)) for f in followers]
    try:
        await asyncio.wait_for(
            asyncio.gather(*(f.first.wait() for f in followers)), args.ready_timeout
        )
        print("READY", flush=True)
        await asyncio.wait_for(asyncio.gather(*tasks), args.timeout)
    except TimeoutError:
        for f in followers:
            if not f.report.completed and f.report.error is None:
                f.report.error = "timeout"
        for task in tasks:
            task.cancel()
    return [f.report for f in followers]


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url")
    parser.add_argument("key")
    parser.add_argument("deployment")
    parser.add_argument("--subscribers", type=int, default=50)
    parser.add_argument("--sample", type=int, default=10, help="latency of every Nth line")
    parser.add_argument("--no-deflate", action="store_true", help="do not offer permessage-deflate")
    parser.add_argument("--fields", default=FIELDS, help="the LogLine fields to select")
    parser.add_argument("--ready-timeout", type=float, default=60)
    parser.add_argument("--timeout", type=float, default=180, help="after READY")
    return parser.parse_args(argv)


if __name__ == "__main__":
    reports = asyncio.run(main(parse_args(sys.argv[1:])))
    result = {"cpu_s": time.process_time(), "reports": [asdict(r) for r in reports]}
    sys.stdout.write(json.dumps(result) + "\n")
