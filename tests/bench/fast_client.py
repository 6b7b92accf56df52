"""Cheap ``deploymentLogs`` followers for the latency benchmarks: WebSocket or SSE.

    python -m tests.bench.fast_client URL KEY DEPLOYMENT_ID --subscribers 500 [--sse]

Each follower is a bare asyncio protocol on uvloop: the WebSocket framing
(graphql-transport-ws; RFC 6455 frames, the client's masked) or the HTTP/1.1 chunked
graphql-sse stream is parsed by hand and each message decoded with orjson, so a follower
costs a few microseconds per message and the server, not the clients, is what a benchmark
measures. The process reports its own CPU time; a benchmark prints it beside the server's.

Prints ``READY`` once every follower has received its first batch (so it is registered on
the server's hub), then, when all streams have completed or the timeout passed, one JSON
line like tests/bench/log_client.py: ``{"cpu_s": ..., "ready_cpu_s": ..., "reports": [...]}``
(the CPU seconds at the end and at READY).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit

import orjson
import uvloop

QUERY = "subscription($id: ID!) { deploymentLogs(deploymentId: $id, afterSeq: 0) { seq message } }"


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
    """What one subscriber received: counts, order, every ``sample``-th line's latency."""

    def __init__(self, sample: int) -> None:
        self.sample = sample
        self.report = Report()
        self.seen: set[int] | None = None  # only once lines came out of order
        self.first = asyncio.Event()
        self.done = asyncio.Event()

    def take(self, lines: list[dict[str, Any]], now: float) -> None:
        rep = self.report
        rep.frames += 1
        rep.first_receipt = rep.first_receipt or now
        rep.last_receipt = now
        self.first.set()
        if not lines:
            return
        first, last, n = lines[0]["seq"], lines[-1]["seq"], len(lines)
        rep.count += n
        # In order and contiguous: the ends say it only if each seq is one more than the
        # one before, checked below only when the ends do not already rule it out.
        if (
            self.seen is None
            and first == rep.max_seq + 1
            and last == first + n - 1
            and all(line["seq"] == first + i for i, line in enumerate(lines))
        ):
            rep.max_seq = rep.unique = last
        else:
            rep.in_order = False
            if self.seen is None:
                self.seen = set(range(1, rep.max_seq + 1))
            self.seen.update(line["seq"] for line in lines)
            rep.max_seq = max(rep.max_seq, max(line["seq"] for line in lines))
            rep.unique = len(self.seen)
        for line in lines[(-first) % self.sample :: self.sample]:
            message: str = line["message"]
            if message.startswith("t="):
                rep.latencies.append(round(now - float(message[2 : message.index(" ")]), 6))

    def fail(self, error: str) -> None:
        if not self.report.completed and self.report.error is None:
            self.report.error = error
        self.first.set()
        self.done.set()

    def complete(self) -> None:
        self.report.completed = True
        self.done.set()

    def on_payload(self, payload: dict[str, Any], now: float) -> None:
        if payload.get("errors"):
            raise RuntimeError(orjson.dumps(payload["errors"]).decode())
        self.take(payload["data"]["deploymentLogs"], now)


class _Base(asyncio.Protocol):
    def __init__(self, follower: Follower, request: bytes) -> None:
        self.follower = follower
        self.request = request
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.headers_done = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not a subclass
        transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        self.follower.fail(f"connection lost: {exc!r}")

    def data_received(self, data: bytes) -> None:
        self.buf += data
        try:
            if not self.headers_done:
                end = self.buf.find(b"\r\n\r\n")
                if end < 0:
                    return
                head = bytes(self.buf[:end]).decode("latin-1")
                del self.buf[: end + 4]
                self.headers_done = True
                self.on_headers(head)
            self.parse()
        except Exception as exc:  # noqa: BLE001 - reported to the benchmark, which fails
            self.follower.fail(f"{exc.__class__.__name__}: {exc}")
            self.close()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def on_headers(self, head: str) -> None:
        raise NotImplementedError

    def parse(self) -> None:
        raise NotImplementedError


def _mask(payload: bytes, opcode: int = 1) -> bytes:
    """A client frame (FIN, masked); small messages only (ours)."""
    key = os.urandom(4)
    n = len(payload)
    if n < 126:
        head = bytes([0x80 | opcode, 0x80 | n])
    else:
        head = bytes([0x80 | opcode, 0x80 | 126]) + n.to_bytes(2, "big")
    body = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return head + key + body


class WSFollower(_Base):
    """graphql-transport-ws over a hand-parsed WebSocket."""

    def __init__(self, follower: Follower, url: str, key: str, deployment: str) -> None:
        parts = urlsplit(url)
        ws_key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET {parts.path or '/'} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {ws_key}\r\nSec-WebSocket-Version: 13\r\n"
            "Sec-WebSocket-Protocol: graphql-transport-ws\r\n\r\n"
        ).encode()
        super().__init__(follower, request)
        self.key = key
        self.deployment = deployment
        self.fragments = bytearray()

    def on_headers(self, head: str) -> None:
        if not head.startswith("HTTP/1.1 101"):
            raise RuntimeError(f"upgrade refused: {head.splitlines()[0]}")
        init = {"type": "connection_init", "payload": {"apiKey": self.key}}
        self.send(init)

    def send(self, message: dict[str, Any]) -> None:
        assert self.transport is not None
        self.transport.write(_mask(orjson.dumps(message)))

    def parse(self) -> None:
        buf = self.buf
        while len(buf) >= 2:
            b0, b1 = buf[0], buf[1]
            n, pos = b1 & 0x7F, 2
            if n == 126:
                if len(buf) < 4:
                    return
                n, pos = int.from_bytes(buf[2:4], "big"), 4
            elif n == 127:
                if len(buf) < 10:
                    return
                n, pos = int.from_bytes(buf[2:10], "big"), 10
            if b1 & 0x80:
                raise RuntimeError("the server masked a frame")
            if len(buf) < pos + n:
                return
            payload = bytes(buf[pos : pos + n])
            del buf[: pos + n]
            self.frame(b0 & 0x80, b0 & 0x0F, payload)

    def frame(self, fin: int, opcode: int, payload: bytes) -> None:
        if opcode == 9:  # ping
            assert self.transport is not None
            self.transport.write(_mask(payload, 10))
            return
        if opcode == 8:
            code = int.from_bytes(payload[:2], "big") if payload else 1005
            if not self.follower.report.completed:
                raise RuntimeError(f"closed by the server: {code} {payload[2:].decode()}")
            self.close()
            return
        if opcode in (1, 2, 0):
            self.fragments += payload
            if not fin:
                return
            self.message(orjson.loads(self.fragments))
            self.fragments.clear()

    def message(self, msg: dict[str, Any]) -> None:
        kind = msg["type"]
        if kind == "next":
            self.follower.on_payload(msg["payload"], time.time())
        elif kind == "connection_ack":
            payload = {"query": QUERY, "variables": {"id": self.deployment}}
            self.send({"id": "1", "type": "subscribe", "payload": payload})
        elif kind == "complete":
            self.follower.complete()
            self.close()
        elif kind == "ping":
            self.send({"type": "pong"})
        elif kind == "error":
            raise RuntimeError(orjson.dumps(msg["payload"]).decode())


class SSEFollower(_Base):
    """graphql-sse (distinct connections) over hand-parsed HTTP/1.1 chunks."""

    def __init__(self, follower: Follower, url: str, key: str, deployment: str) -> None:
        parts = urlsplit(url)
        body = orjson.dumps({"query": QUERY, "variables": {"id": deployment}})
        request = (
            f"POST {parts.path or '/'} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            f"x-api-key: {key}\r\nAccept: text/event-stream\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        super().__init__(follower, request)
        self.chunked = False
        self.text = bytearray()  # de-chunked body not yet parsed into events

    def on_headers(self, head: str) -> None:
        status = head.split("\r\n", 1)[0]
        if not status.startswith("HTTP/1.1 200"):
            raise RuntimeError(f"refused: {status}")
        self.chunked = "transfer-encoding: chunked" in head.lower()

    def parse(self) -> None:
        if self.chunked:
            buf = self.buf
            while True:
                end = buf.find(b"\r\n")
                if end < 0:
                    break
                size = int(bytes(buf[:end]).split(b";", 1)[0], 16)
                if len(buf) < end + 2 + size + 2:
                    break
                self.text += buf[end + 2 : end + 2 + size]
                del buf[: end + 2 + size + 2]
                if size == 0:
                    break
        else:
            self.text += self.buf
            self.buf.clear()
        self.events()

    def events(self) -> None:
        text = self.text
        while True:
            end = text.find(b"\r\n\r\n")
            if end < 0:
                return
            event = bytes(text[:end])
            del text[: end + 4]
            kind, data = b"", b""
            for line in event.split(b"\r\n"):
                if line.startswith(b"event: "):
                    kind = line[7:]
                elif line.startswith(b"data: "):
                    data = line[6:]
            if kind == b"next":
                self.follower.on_payload(orjson.loads(data), time.time())
            elif kind == b"complete":
                self.follower.complete()
                self.close()
                return


async def _follow(follower: Follower, args: argparse.Namespace) -> None:
    parts = urlsplit(args.url)
    cls = SSEFollower if args.sse else WSFollower
    loop = asyncio.get_running_loop()
    try:
        await loop.create_connection(
            lambda: cls(follower, args.url, args.key, args.deployment),
            parts.hostname,
            parts.port,
        )
    except OSError as exc:
        follower.fail(f"connect: {exc!r}")
    await follower.done.wait()


READY_CPU: list[float] = []


async def main(args: argparse.Namespace) -> list[Report]:
    followers = [Follower(args.sample) for _ in range(args.subscribers)]
    tasks = []
    for n, f in enumerate(followers):
        tasks.append(asyncio.create_task(_follow(f, args)))
        if n % 50 == 49:
            await asyncio.sleep(0.05)  # a burst of connects would overflow the backlog
    try:
        await asyncio.wait_for(
            asyncio.gather(*(f.first.wait() for f in followers)), args.ready_timeout
        )
        READY_CPU.append(time.process_time())
        print("READY", flush=True)
        await asyncio.wait_for(asyncio.gather(*tasks), args.timeout)
    except TimeoutError:
        for f in followers:
            f.fail("timeout")
        for task in tasks:
            task.cancel()
    return [f.report for f in followers]


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url", help="http://HOST:PORT/graphql (ws:// for WebSocket is the same)")
    parser.add_argument("key")
    parser.add_argument("deployment")
    parser.add_argument("--subscribers", type=int, default=50)
    parser.add_argument("--sse", action="store_true", help="graphql-sse instead of WebSocket")
    parser.add_argument("--sample", type=int, default=10, help="latency of every Nth line")
    parser.add_argument("--ready-timeout", type=float, default=60)
    parser.add_argument("--timeout", type=float, default=180, help="after READY")
    return parser.parse_args(argv)


if __name__ == "__main__":
    reports = uvloop.run(main(parse_args(sys.argv[1:])))
    ready = READY_CPU[0] if READY_CPU else 0.0
    result = {
        "cpu_s": time.process_time(),
        "ready_cpu_s": ready,
        "reports": [asdict(r) for r in reports],
    }
    sys.stdout.buffer.write(orjson.dumps(result) + b"\n")
