"""The writer: seq without gaps, masking, the file format, resuming after a crash."""

from __future__ import annotations

import threading
from pathlib import Path

from app.logs.files import last_seq, read_after
from app.logs.messages import End, Lines, Message
from app.logs.writer import LogWriter
from app.masking import MASK
from app.types import LogStream


class RecordingBus:
    def __init__(self) -> None:
        self.sent: list[tuple[str, Message]] = []

    def publish(self, topic: str, message: Message) -> None:
        self.sent.append((topic, message))


def test_lines_are_numbered_filed_and_published(tmp_path: Path) -> None:
    bus = RecordingBus()
    writer = LogWriter(path=tmp_path / "a.log", deployment_id="d1", bus=bus)  # type: ignore[arg-type]
    writer.step = "BUILD_IMAGE"
    writer.write("one\ntwo\n")
    writer.write("three", stream=LogStream.STDERR, step="RELEASE")
    assert writer.close() == 3
    lines = read_after(tmp_path / "a.log", 0)
    assert [(x.seq, x.message, x.step) for x in lines] == [
        (1, "one", "BUILD_IMAGE"),
        (2, "two", "BUILD_IMAGE"),
        (3, "three", "RELEASE"),
    ]
    assert lines[2].stream is LogStream.STDERR
    topics = {t for t, _ in bus.sent}
    assert topics == {"logs:d1"}
    published = [line for _, m in bus.sent if isinstance(m, Lines) for line in m.lines]
    assert published == lines
    assert bus.sent[-1][1] == End(3)


def test_secrets_are_masked_everywhere(tmp_path: Path) -> None:
    bus = RecordingBus()
    writer = LogWriter(
        path=tmp_path / "a.log",
        deployment_id="d",
        bus=bus,
        secrets=["s3cret", "s3cret-longer", "x"],  # type: ignore[arg-type]
    )
    writer.write("token=s3cret-longer and s3cret; x stays")
    writer.close()
    text = (tmp_path / "a.log").read_text()
    assert "s3cret" not in text and text.count(MASK) == 2 and "x stays" in text
    assert all("s3cret" not in str(m) for _, m in bus.sent)


def test_concurrent_writers_never_reuse_or_skip_a_seq(tmp_path: Path) -> None:
    writer = LogWriter(path=tmp_path / "a.log", deployment_id="d", bus=RecordingBus())  # type: ignore[arg-type]

    def spam(n: int) -> None:
        for i in range(500):
            writer.write(f"thread {n} line {i}")

    threads = [threading.Thread(target=spam, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    writer.close()
    assert [x.seq for x in read_after(tmp_path / "a.log", 0)] == list(range(1, 2001))


def test_reopening_continues_after_a_torn_last_line(tmp_path: Path) -> None:
    path = tmp_path / "a.log"
    first = LogWriter(path=path, deployment_id="d", bus=RecordingBus())  # type: ignore[arg-type]
    first.write("a\nb")
    first.close()
    with path.open("a") as fh:
        fh.write('[3,"2026-')  # a crash in the middle of a line
    assert last_seq(path) == 2
    again = LogWriter(path=path, deployment_id="d", bus=RecordingBus())  # type: ignore[arg-type]
    again.write("c")
    again.close()
    assert [(x.seq, x.message) for x in read_after(path, 0)] == [(1, "a"), (2, "b"), (3, "c")]


def test_read_after_and_limit(tmp_path: Path) -> None:
    writer = LogWriter(path=tmp_path / "a.log", deployment_id="d", bus=RecordingBus())  # type: ignore[arg-type]
    for i in range(20):
        writer.write(f"line {i}")
    writer.close()
    assert [x.seq for x in read_after(tmp_path / "a.log", 15)] == [16, 17, 18, 19, 20]
    assert [x.seq for x in read_after(tmp_path / "a.log", 3, limit=2)] == [4, 5]
    assert read_after(tmp_path / "missing.log", 0) == []


def test_read_from_continues_at_its_offset_and_leaves_a_partial_line(tmp_path: Path) -> None:
    from app.logs.files import read_from

    path = tmp_path / "a.log"
    writer = LogWriter(path=path, deployment_id="d", bus=RecordingBus())  # type: ignore[arg-type]
    for i in range(10):
        writer.write(f"line {i}")
    writer.close()
    first, offset = read_from(path, offset=0, after_seq=0, limit=4)
    assert [x.seq for x in first] == [1, 2, 3, 4]
    rest, offset = read_from(path, offset=offset, after_seq=4, limit=100)
    assert [x.seq for x in rest] == list(range(5, 11))
    with path.open("a") as fh:
        fh.write('[11,"2026-01-01T00:00:00+00:00","STDOUT",null,"half')  # still being written
    more, same = read_from(path, offset=offset, after_seq=10, limit=100)
    assert more == [] and same == offset


def test_each_file_line_is_the_json_array_of_its_fields(tmp_path: Path) -> None:
    """The writer encodes the shared fields once per call; the file is what json.dumps of
    ``[seq, timestamp, stream, step, message]`` gives, for awkward text too."""
    import json

    writer = LogWriter(path=tmp_path / "a.log", deployment_id="d1", bus=RecordingBus())  # type: ignore[arg-type]
    texts = ['say "hi"\\n', "tab\there", "ünïcödé ✓ \x00\x1b[31m", "", "back\\slash"]
    writer.write("\n".join(texts), stream=LogStream.STDERR)
    writer.step = 'STEP "x"'
    writer.write("last")
    writer.close()
    lines = read_after(tmp_path / "a.log", 0)
    raw = (tmp_path / "a.log").read_text(encoding="utf-8").splitlines()
    assert [x.message for x in lines] == [*texts, "last"]
    for line, text in zip(lines, raw, strict=True):
        fields = [line.seq, line.timestamp.isoformat(), line.stream.value, line.step, line.message]
        assert text == json.dumps(fields, ensure_ascii=False, separators=(",", ":"))
    assert lines[-1].step == 'STEP "x"' and lines[0].step is None
