"""The CLI against a real server over real HTTP and WebSocket (fake adapters for speed):
deploy and follow to DONE, ERROR and CANCELLED with their exit codes, Ctrl-C, JSON output
parsed, bad usage, wrong keys and scopes, APP by name and by id, no ANSI codes in a pipe."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from typing import Any

from app.types import Scope
from tests.e2e.cli_support import (
    ANSI,
    check_clean,
    json_lines,
    on_terminal,
    popen,
    server_root,
    slipway,
)
from tests.e2e.conftest import GIT_APP, Fakes, wait_finished
from tests.e2e.harness import Server
from tests.e2e.queries import CREATE_APP, DEPLOY


def _app(server: Server, **extra: Any) -> dict[str, Any]:
    app: dict[str, Any] = server.client(Scope.ADMIN)(CREATE_APP, input=GIT_APP(**extra))[
        "createApplication"
    ]
    return app


def _url(server: Server) -> str:
    return server_root(server.url)


def test_deploy_follow_to_done_piped_exits_0_with_steps_and_lines(fake_server: Server) -> None:
    _app(fake_server, name="web")
    key = fake_server.key(Scope.DEPLOY)
    done = slipway(_url(fake_server), key, "deploy", "web", "--follow")
    assert done.returncode == 0, done.stderr
    out = done.stdout.splitlines()
    for step in ("FETCH_SOURCE", "BUILD_IMAGE", "RELEASE", "VERIFY_HEALTH"):
        assert f"==> {step}" in out, done.stdout
    builds = [line for line in out if "fake build of" in line]
    assert [line.split(" : ")[0] for line in builds] == ["Step 1/3", "Step 2/3", "Step 3/3"]
    assert out.index("==> BUILD_IMAGE") < out.index(builds[0])
    assert len(out) == len(set(out)), "a line printed twice"
    assert not ANSI.search(done.stdout) and not ANSI.search(done.stderr)
    assert " DONE" in done.stderr.splitlines()[-1]


def test_deploy_follow_to_error_exits_1_with_the_error(fake_server: Server, fakes: Fakes) -> None:
    fakes.builder.fail = "the Dockerfile has no FROM line"
    _app(fake_server, name="web")
    done = slipway(_url(fake_server), fake_server.key(Scope.DEPLOY), "deploy", "web", "-f")
    assert done.returncode == 1, (done.stdout, done.stderr)
    last = done.stderr.splitlines()[-1]
    assert " ERROR" in last and "the Dockerfile has no FROM line" in last


def test_cancel_ends_the_follow_with_130(fake_server: Server, fakes: Fakes) -> None:
    fakes.builder.block = True
    _app(fake_server, name="web")
    url, key = _url(fake_server), fake_server.key(Scope.DEPLOY)
    follow = popen(url, key, "deploy", "web", "--follow")
    try:
        assert fakes.builder.started.wait(30), "the build never started"
        cancelled = slipway(url, key, "cancel", "web")
        assert cancelled.returncode == 0 and "being stopped" in cancelled.stderr
        stdout, stderr = follow.communicate(timeout=30)
    finally:
        follow.kill()
    check_clean(stdout, stderr, key)
    assert follow.returncode == 130, stderr
    assert " CANCELLED" in stderr.splitlines()[-1]


def test_ctrl_c_exits_130_and_leaves_the_deployment_running(
    fake_server: Server, fakes: Fakes
) -> None:
    fakes.builder.block = True
    app = _app(fake_server, name="web")
    url, key = _url(fake_server), fake_server.key(Scope.DEPLOY)
    follow = popen(url, key, "deploy", "web", "--follow")
    try:
        assert fakes.builder.started.wait(30), "the build never started"
        assert follow.stdout is not None
        while "fake build of" not in follow.stdout.readline():  # the follow is live
            assert follow.poll() is None
        follow.send_signal(signal.SIGINT)
        stdout, stderr = follow.communicate(timeout=15)
    finally:
        follow.kill()
    check_clean(stdout, stderr, key)
    assert follow.returncode == 130, stderr
    status = slipway(url, key, "status", app["id"], "--output", "json")
    assert json.loads(status.stdout)["lastDeployment"]["status"] == "RUNNING"
    assert slipway(url, key, "cancel", "web").returncode == 0


def test_json_output_parses(fake_server: Server) -> None:
    app = _app(fake_server, name="web")
    url, key = _url(fake_server), fake_server.key(Scope.DEPLOY)
    follow = slipway(url, key, "deploy", "web", "--follow", "--output", "json")
    assert follow.returncode == 0, follow.stderr
    docs = json_lines(follow.stdout)
    lines, end = docs[:-1], docs[-1]
    assert {d["type"] for d in lines} == {"line"} and end["type"] == "deployment"
    assert [d["seq"] for d in lines] == list(range(1, len(lines) + 1))
    assert end["status"] == "DONE" and end["applicationId"] == app["id"]
    assert [s["step"] for s in end["steps"]][:2] == ["FETCH_SOURCE", "BUILD_IMAGE"]

    [listed] = json.loads(slipway(url, key, "apps", "-o", "json").stdout)
    assert (listed["id"], listed["name"], listed["status"]) == (app["id"], "web", "DONE")
    status = json.loads(slipway(url, key, "status", "web", "-o", "json").stdout)
    assert status["application"]["id"] == app["id"]
    assert status["lastDeployment"]["id"] == end["id"]
    logs = json.loads(slipway(url, key, "logs", end["id"], "-o", "json").stdout)
    assert logs == [{k: v for k, v in d.items() if k != "type"} for d in lines]
    after = json.loads(
        slipway(url, key, "logs", end["id"], "--after-seq", "3", "-o", "json").stdout
    )
    assert [line["seq"] for line in after] == list(range(4, len(lines) + 1))
    tail = slipway(url, key, "logs", end["id"], "-f", "--after-seq", "3", "-o", "json")
    assert tail.returncode == 0, tail.stderr
    assert [d.get("seq") for d in json_lines(tail.stdout)] == [*range(4, len(lines) + 1), None]
    queue = json.loads(slipway(url, key, "queue", "-o", "json").stdout)
    assert [(j["state"], j["deployment"]["id"]) for j in queue] == [("COMPLETED", end["id"])]
    redeploy = slipway(url, key, "redeploy", app["id"], "-o", "json")
    assert json.loads(redeploy.stdout)["trigger"] == "REBUILD"


def test_app_by_name_by_service_name_and_by_id(fake_server: Server) -> None:
    app = _app(fake_server, name="Web Site")
    url, key = _url(fake_server), fake_server.key(Scope.DEPLOY)
    for ref in ("Web Site", app["appName"], app["id"]):
        done = slipway(url, key, "deploy", ref)
        assert done.returncode == 0, done.stderr
        dep_id = done.stdout.strip()
        assert wait_finished(fake_server.client(), dep_id)["status"] == "DONE"
        text = slipway(url, key, "status", ref)
        assert text.returncode == 0 and f"last deployment {dep_id} DONE" in text.stdout
    unknown = slipway(url, key, "status", "nope")
    assert unknown.returncode == 1
    assert unknown.stderr == "error: no application has the id or name 'nope' (NOT_FOUND)\n"
    _app(fake_server, name="Web Site")
    twice = slipway(url, key, "deploy", "Web Site")
    assert twice.returncode == 1 and "2 applications are named 'Web Site'" in twice.stderr


def test_text_output_is_plain_when_piped(fake_server: Server) -> None:
    app = _app(fake_server, name="web")
    url, key = _url(fake_server), fake_server.key(Scope.DEPLOY)
    dep = fake_server.client()(DEPLOY, id=app["id"])["deployApplication"]
    wait_finished(fake_server.client(), dep["id"])
    for args in (["apps"], ["status", "web"], ["queue"], ["logs", dep["id"]]):
        done = slipway(url, key, *args)
        assert done.returncode == 0 and done.stdout, (args, done.stderr)
        assert not ANSI.search(done.stdout + done.stderr), args
    table = slipway(url, key, "apps").stdout.splitlines()
    assert table[0].split() == ["NAME", "ID", "STATUS", "SOURCE", "BUILD", "SERVICE"]
    assert table[1].split()[:3] == ["web", app["id"], "DONE"]


def test_bad_usage_exits_2(fake_server: Server) -> None:
    url, key = _url(fake_server), fake_server.key(Scope.READ)
    for args in (
        ["deploy"],
        ["logs"],
        ["apps", "--output", "xml"],
        ["logs", "x", "--after-seq", "-1"],
        ["nosuch"],
    ):
        done = slipway(url, key, *args)
        assert done.returncode == 2, (args, done.stderr)
        assert "Usage:" in done.stderr and "Error:" in done.stderr
    no_url = slipway("", key, "apps")
    assert no_url.returncode == 2 and "SLIPWAY_URL" in no_url.stderr
    no_key = slipway(url, "", "apps")
    assert no_key.returncode == 2 and "SLIPWAY_API_KEY" in no_key.stderr


def test_wrong_key_weak_key_and_no_server_are_one_clear_line(fake_server: Server) -> None:
    _app(fake_server, name="web")
    url = _url(fake_server)
    wrong = "slw_" + "x" * 40
    for args in (["apps"], ["deploy", "web", "--follow"], ["logs", "x", "--follow"]):
        done = slipway(url, wrong, *args)
        assert done.returncode == 1, done.stderr
        assert done.stderr == (
            "error: the server refused the API key: the API key is not valid (UNAUTHENTICATED)\n"
        )
    read = fake_server.key(Scope.READ)
    refused = slipway(url, read, "deploy", "web")
    assert refused.returncode == 1
    assert refused.stderr.startswith("error: ") and refused.stderr.endswith("(FORBIDDEN)\n")
    assert len(refused.stderr.splitlines()) == 1
    gone = slipway("http://127.0.0.1:9", read, "apps")
    assert gone.returncode == 1
    assert gone.stderr.startswith("error: cannot reach the Slipway server at http://127.0.0.1:9/")


def test_follow_with_a_refused_websocket_key_is_not_retried(fake_server: Server) -> None:
    """The key is checked over HTTP first; one revoked between that and the socket's init
    is refused by the socket (4401) and the follow stops at once instead of retrying."""
    app = _app(fake_server, name="web")
    admin = fake_server.client(Scope.ADMIN)
    dep = admin(DEPLOY, id=app["id"])["deployApplication"]
    wait_finished(admin, dep["id"])
    from app.client.connection import Connection
    from app.client.errors import ClientError
    from app.client.follow import LogFollower

    follower = LogFollower(
        Connection.of(_url(fake_server), "slw_" + "y" * 40), dep["id"], after_seq=0, on_lines=print
    )
    started = time.monotonic()
    try:
        follower.run()
        raise AssertionError("a refused key was followed")
    except ClientError as exc:
        assert "refused the API key" in str(exc)
    assert time.monotonic() - started < 5 and follower.connections == 1


def test_api_key_list_and_revoke_through_the_api(fake_server: Server) -> None:
    url = _url(fake_server)
    admin = fake_server.key(Scope.ADMIN)
    other = fake_server.key(Scope.READ)
    listed = slipway(url, admin, "api-key", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert {r["scopes"] for r in rows} == {"ADMIN", "READ"}
    assert {r["state"] for r in rows} == {"active"}
    assert other not in listed.stdout and other[:10] in {r["prefix"] for r in rows}
    table = slipway(url, admin, "api-key", "list")
    assert table.returncode == 0 and table.stdout.split()[:3] == ["id", "name", "scopes"]
    read_row = next(r for r in rows if r["scopes"] == "READ")
    refused = slipway(url, other, "api-key", "list")
    assert refused.returncode == 1 and refused.stderr.endswith("(FORBIDDEN)\n")
    revoked = slipway(url, admin, "api-key", "revoke", read_row["id"])
    assert revoked.returncode == 0 and f"API key {read_row['id']} revoked" in revoked.stderr
    assert slipway(url, other, "apps").returncode == 1
    again = slipway(url, admin, "api-key", "revoke", read_row["id"])
    assert again.returncode == 0 and "already revoked" in again.stderr
    unknown = slipway(url, admin, "api-key", "revoke", "nope")
    assert unknown.returncode == 1 and unknown.stderr.endswith("(NOT_FOUND)\n")
    state = {
        r["id"]: r["state"]
        for r in json_lines_or_list(slipway(url, admin, "api-key", "list", "--json"))
    }
    assert state[read_row["id"]] == "revoked"


def json_lines_or_list(done: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads(done.stdout)
    return rows


COLOUR = re.compile(r"\x1b\[[0-9;]*(3[0-9]|9[0-7]|38;)[0-9;]*m")


def test_on_a_terminal_colours_and_a_spinner_and_no_colour_with_no_color(
    fake_server: Server,
) -> None:
    _app(fake_server, name="web")
    url, key = _url(fake_server), fake_server.key(Scope.DEPLOY)
    code, drawn = on_terminal(url, key, "deploy", "web", "--follow")
    assert code == 0, drawn
    assert "==> BUILD_IMAGE" in drawn and "Step 3/3 : fake build of" in drawn
    assert COLOUR.search(drawn), drawn  # the step headers, SYSTEM lines, DONE in green
    assert "\x1b[?25l" in drawn  # the spinner's live display hides the cursor
    code, plain = on_terminal(url, key, "redeploy", "web", "--follow", NO_COLOR="1")
    assert code == 0, plain
    assert "==> BUILD_IMAGE" in plain and not COLOUR.search(plain), plain


def test_rollback_follow_releases_an_earlier_deployment_again(fake_server: Server) -> None:
    app = _app(fake_server, name="web")
    url, key = _url(fake_server), fake_server.key(Scope.DEPLOY)
    first = slipway(url, key, "deploy", "web")
    assert first.returncode == 0, first.stderr
    first_id = first.stdout.strip()
    assert wait_finished(fake_server.client(), first_id)["status"] == "DONE"
    assert slipway(url, key, "deploy", "web", "--follow").returncode == 0
    back = slipway(url, key, "rollback", first_id, "--follow", "--output", "json")
    assert back.returncode == 0, back.stderr
    end = json_lines(back.stdout)[-1]
    assert (end["type"], end["status"], end["trigger"]) == ("deployment", "DONE", "ROLLBACK")
    assert end["rollbackOfId"] == first_id and end["applicationId"] == app["id"]
    assert "==> RELEASE" in [d["message"] for d in json_lines(back.stdout)[:-1]]
    read = slipway(url, fake_server.key(Scope.READ), "rollback", first_id)
    assert read.returncode == 1 and read.stderr.endswith("(FORBIDDEN)\n"), read.stderr
    unknown = slipway(url, key, "rollback", "nope")
    assert unknown.returncode == 1 and unknown.stderr.startswith("error: ")
    assert unknown.stderr.endswith("(BAD_USER_INPUT)\n") and len(unknown.stderr.splitlines()) == 1


def test_a_closed_pipe_stops_the_follow_quietly(fake_server: Server, fakes: Fakes) -> None:
    """`slipway logs -f ID | head -1`: the follow ends (141) when head exits, no traceback,
    no retry; the deployment goes on."""
    fakes.builder.lines, fakes.builder.delay_s = 300, 0.02
    app = _app(fake_server, name="web")
    url, key = _url(fake_server), fake_server.key(Scope.DEPLOY)
    dep_id = slipway(url, key, "deploy", "web").stdout.strip()
    follow = popen(url, key, "logs", dep_id, "--follow")
    try:
        assert follow.stdout is not None
        assert follow.stdout.readline().startswith("Deployment ")
        follow.stdout.close()  # as head does once it has its line
        code = follow.wait(timeout=20)
        stderr = follow.stderr.read() if follow.stderr else ""
    finally:
        follow.kill()
    check_clean("", stderr, key)
    assert code == 141, stderr
    assert "connection lost" not in stderr and "error" not in stderr, stderr
    assert wait_finished(fake_server.client(), dep_id)["status"] == "DONE"
    assert (
        json.loads(slipway(url, key, "status", app["id"], "-o", "json").stdout)["lastDeployment"][
            "id"
        ]
        == dep_id
    )


def test_flags_instead_of_the_environment(fake_server: Server) -> None:
    _app(fake_server, name="web")
    key = fake_server.key(Scope.READ)
    for url in (_url(fake_server), fake_server.url, fake_server.url + "/"):
        done = slipway("", "", "apps", "-o", "json", "--url", url, "--api-key", key)
        assert done.returncode == 0, done.stderr
        assert [a["name"] for a in json.loads(done.stdout)] == ["web"]
    # the flag wins over the environment
    flagged = slipway(
        "http://127.0.0.1:9",
        "slw_" + "z" * 40,
        "apps",
        "--url",
        _url(fake_server),
        "--api-key",
        key,
    )
    assert flagged.returncode == 0, flagged.stderr
