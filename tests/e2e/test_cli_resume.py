"""`slipway logs --follow` survives `slipway serve` restarting mid-stream: distributed mode
(PostgreSQL, Redis), `slipway serve` and a fake-adapter worker as processes of their own
(tests/support), the CLI followers as a pipeline would run them. Every seq is printed
exactly once, in order, and the follow exits 0 when the deployment ends DONE."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from app.logs.files import last_seq
from tests.e2e.cli_support import ANSI, ROOT, SLIPWAY, check_clean, cli_env, json_lines
from tests.e2e.conftest import GIT_APP, wait_finished
from tests.e2e.harness import Client, free_port
from tests.e2e.queries import CREATE_APP, DEPLOY
from tests.support.processes import Proc, create_api_key, slipway_env, start_serve, start_worker

pytestmark = [pytest.mark.redis, pytest.mark.postgres]

REDIS_DB = 9  # of its own: a worker of another test must not take our messages


@pytest.fixture
def procs() -> Iterator[list[Proc]]:
    started: list[Proc] = []
    yield started
    for proc in started:
        proc.stop(timeout=20)


@pytest.fixture
def redis_db(redis_url: str) -> Iterator[str]:
    url = redis_url.rsplit("/", 1)[0] + f"/{REDIS_DB}"
    with redis.Redis.from_url(url) as r:
        r.flushdb()
    yield url
    with redis.Redis.from_url(url) as r:
        r.flushdb()


def _follow(url: str, key: str, dep_id: str, out: Path, *extra: str) -> subprocess.Popen[str]:
    with out.open("w") as stdout, out.with_suffix(".err").open("w") as stderr:
        return subprocess.Popen(
            [SLIPWAY, "logs", dep_id, "--follow", *extra],
            cwd=ROOT,
            env=cli_env(url, key),
            stdout=stdout,
            stderr=stderr,
            text=True,
        )


def test_follow_resumes_after_serve_restarts_with_every_line_once(
    tmp_path: Path, pg_schema_url: str, redis_db: str, procs: list[Proc]
) -> None:
    env = slipway_env(data_dir=tmp_path / "data", database_url=pg_schema_url, redis_url=redis_db)
    key = create_api_key(env, scope="READ")  # also migrates the schema
    admin = create_api_key(env)
    port = free_port()
    serve = start_serve(env, tmp_path / "serve-1.log", port=port)
    procs.append(serve)
    procs.append(start_worker(env, tmp_path / "worker.log", lines=3000, step_seconds=12))
    url = f"http://127.0.0.1:{port}"
    client = Client(f"{url}/graphql", admin)
    app_id = client(CREATE_APP, input=GIT_APP())["createApplication"]["id"]
    dep = client(DEPLOY, id=app_id)["deployApplication"]
    path = Path(dep["logPath"])
    as_json = _follow(url, key, dep["id"], tmp_path / "json.out", "--output", "json")
    plain = _follow(url, key, dep["id"], tmp_path / "plain.out")
    try:
        deadline = time.monotonic() + 60
        while last_seq(path) < 500 or (tmp_path / "json.out").stat().st_size < 10_000:
            assert time.monotonic() < deadline, "the deployment did not log 500 lines"
            assert as_json.poll() is None and plain.poll() is None, "a follower exited early"
            time.sleep(0.05)
        assert last_seq(path) < 2500, "the deployment must still be logging"
        serve.stop(timeout=20)
        time.sleep(1.0)  # down for a moment: the followers' reconnections are refused
        procs.append(start_serve(env, tmp_path / "serve-2.log", port=port))
        json_code = as_json.wait(timeout=120)
        plain_code = plain.wait(timeout=60)
    finally:
        as_json.kill()
        plain.kill()
    done = wait_finished(client, dep["id"], timeout=60)
    assert done["status"] == "DONE", done["errorMessage"]
    final = last_seq(path)
    logged = done["logs"]
    assert [line["seq"] for line in logged] == list(range(1, final + 1))

    err = (tmp_path / "json.err").read_text()
    out = (tmp_path / "json.out").read_text()
    check_clean(out, err, key)
    assert json_code == 0, err
    assert "connection lost" in err, "the follower never lost its connection: no restart seen"
    docs = json_lines(out)
    seqs = [d["seq"] for d in docs if d["type"] == "line"]
    assert seqs == list(range(1, final + 1)), (len(seqs), final, len(set(seqs)))
    assert docs[-1]["type"] == "deployment" and docs[-1]["status"] == "DONE"

    err = (tmp_path / "plain.err").read_text()
    out = (tmp_path / "plain.out").read_text()
    check_clean(out, err, key)
    assert plain_code == 0 and "connection lost" in err, err
    assert not ANSI.search(out + err)
    assert out.splitlines() == [line["message"] for line in logged]
