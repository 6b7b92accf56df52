"""Registries as objects over real HTTP: CRUD, validation, scopes, the applications that
point at them, and a password that is write-only and encrypted at rest."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from app.db.models import Registry as RegistryRow
from app.types import Scope
from tests.e2e.conftest import GIT_APP, Fakes, wait_finished
from tests.e2e.harness import Client, GraphQLError, Server
from tests.e2e.queries import CREATE_APP, DEPLOY
from tests.e2e.support_registries import (
    CREATE,
    CREATE_APP_REG,
    DELETE,
    LIST,
    NODE,
    ONE,
    TEST,
    UPDATE,
    UPDATE_APP,
    Recorded,
    assert_nowhere,
)

PASSWORD = "reg1stry-Pa55word-e2e"


@pytest.fixture
def seen() -> list[str]:
    return []


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Every log record of the in-process server, at every level."""
    caplog.set_level(logging.DEBUG)
    yield caplog


def client(server: Server, seen: list[str], scope: Scope | None = Scope.ADMIN) -> Recorded:
    return Recorded(server.url, server.key(scope) if scope else None, seen)


def refused(call: Any, query: str, **variables: Any) -> GraphQLError:
    with pytest.raises(GraphQLError) as caught:
        call(query, **variables)
    return caught.value


def create(admin: Client, **fields: Any) -> dict[str, Any]:
    data = {"name": "home", "url": "127.0.0.1:5001", **fields}
    registry: dict[str, Any] = admin(CREATE, input=data)["createRegistry"]
    return registry


def test_crud_round_trip_never_shows_the_password(
    fake_server: Server, seen: list[str], logs: Any
) -> None:
    admin = client(fake_server, seen)
    made = create(
        admin,
        name=" Home registry ",
        url="HTTP://Registry.Example.com:05000/",
        username="pusher",
        password=PASSWORD,
        imagePrefix="team/images",
    )
    assert made == {
        "id": made["id"],
        "name": "Home registry",
        "url": "http://registry.example.com:5000",
        "host": "registry.example.com:5000",
        "username": "pusher",
        "imagePrefix": "team/images",
        "hasPassword": True,
        "secure": False,
    }
    reader = client(fake_server, seen, Scope.READ)
    assert reader(LIST)["registries"] == [made]
    assert reader(ONE, id=made["id"])["registry"] == made
    assert reader(NODE, id=made["id"])["node"] == {
        "id": made["id"],
        "name": "Home registry",
        "hasPassword": True,
    }
    renamed = admin(UPDATE, id=made["id"], input={"name": "home", "imagePrefix": ""})
    assert (
        renamed["updateRegistry"] | {"name": "home", "imagePrefix": None}
        == renamed["updateRegistry"]
    )
    assert renamed["updateRegistry"]["hasPassword"] is True  # omitted: kept
    with fake_server.db.session() as session:
        row = session.get(RegistryRow, made["id"])
        assert row is not None and row.password_enc and PASSWORD not in row.password_enc
    cleared = admin(UPDATE, id=made["id"], input={"password": ""})["updateRegistry"]
    assert cleared["hasPassword"] is False and cleared["username"] == "pusher"
    again = admin(UPDATE, id=made["id"], input={"password": PASSWORD})["updateRegistry"]
    assert again["hasPassword"] is True
    assert admin(DELETE, id=made["id"]) == {"deleteRegistry": True}
    assert reader(LIST)["registries"] == []
    assert reader(ONE, id=made["id"])["registry"] is None
    assert refused(admin, DELETE, id=made["id"]).codes == ["NOT_FOUND"]
    assert_nowhere(PASSWORD, fake_server, seen, logs)


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("", "must not be empty"),
        ("ftp://registry.example.com", "scheme must be http or https"),
        ("https://user:pw@registry.example.com", "must not hold credentials"),
        ("registry.example.com/team", "without a path"),
        ("registry.example.com:99999", "port must be within 1-65535"),
        ("myregistry", "Docker Hub namespace"),
        ("https://registry.example.com?x=1", "query or fragment"),
        ("registry example.com", "spaces"),
    ],
)
def test_bad_urls_are_refused_saying_why(
    fake_server: Server, seen: list[str], url: str, says: str
) -> None:
    admin = client(fake_server, seen)
    error = refused(admin, CREATE, input={"name": "r", "url": url})
    assert error.codes == ["BAD_USER_INPUT"]
    assert says in error.errors[0]["message"]
    assert admin(LIST)["registries"] == []


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"imagePrefix": "Team"}, "imagePrefix 'Team'"),
        ({"imagePrefix": "team//images"}, "no empty parts"),
        ({"imagePrefix": "team/-x"}, "imagePrefix"),
        ({"imagePrefix": "a" * 300}, "imagePrefix must be at most"),
        ({"password": PASSWORD}, "a password needs a username"),
        ({"username": "us er", "password": PASSWORD}, "username must be"),
        ({"username": "us:er", "password": PASSWORD}, "':'"),
        ({"name": ""}, "name must not be empty"),
        ({"name": "x" * 101}, "name must be at most 100"),
    ],
)
def test_bad_fields_are_refused_saying_why(
    fake_server: Server, seen: list[str], logs: Any, fields: dict[str, Any], says: str
) -> None:
    admin = client(fake_server, seen)
    error = refused(admin, CREATE, input={"name": "r", "url": "127.0.0.1:5001", **fields})
    assert error.codes == ["BAD_USER_INPUT"]
    assert says in error.errors[0]["message"]
    assert admin(LIST)["registries"] == []
    assert_nowhere(PASSWORD, fake_server, seen, logs)


def test_a_duplicate_name_is_a_conflict(fake_server: Server, seen: list[str]) -> None:
    admin = client(fake_server, seen)
    first = create(admin)
    other = create(admin, name="other")
    error = refused(admin, CREATE, input={"name": "home", "url": "127.0.0.1:5000"})
    assert error.codes == ["CONFLICT"]
    assert "a registry named 'home' already exists" in error.errors[0]["message"]
    renamed = refused(admin, UPDATE, id=other["id"], input={"name": "home"})
    assert renamed.codes == ["CONFLICT"]
    assert [r["name"] for r in admin(LIST)["registries"]] == ["home", "other"]
    assert admin(UPDATE, id=first["id"], input={"name": "home"})["updateRegistry"]["name"]


def test_a_new_host_needs_the_password_again(
    fake_server: Server, seen: list[str], logs: Any
) -> None:
    admin = client(fake_server, seen)
    made = create(admin, username="pusher", password=PASSWORD)
    error = refused(admin, UPDATE, id=made["id"], input={"url": "evil.example.com"})
    assert error.codes == ["BAD_USER_INPUT"]
    assert "give password again" in error.errors[0]["message"]
    assert admin(ONE, id=made["id"])["registry"] == made  # nothing half-applied
    # the same host in another spelling is no move
    same = admin(UPDATE, id=made["id"], input={"url": "http://127.0.0.1:5001/"})
    assert same["updateRegistry"]["hasPassword"] is True
    moved = admin(
        UPDATE, id=made["id"], input={"url": "registry.example.com", "password": "other-pw-1"}
    )["updateRegistry"]
    assert (moved["host"], moved["hasPassword"], moved["secure"]) == (
        "registry.example.com",
        True,
        True,
    )
    removed = admin(UPDATE, id=made["id"], input={"url": "127.0.0.1:5000", "password": ""})
    assert removed["updateRegistry"]["hasPassword"] is False
    assert_nowhere(PASSWORD, fake_server, seen, logs)
    assert_nowhere("other-pw-1", fake_server, seen, logs)


def test_weaker_keys_and_no_key_are_refused(fake_server: Server, seen: list[str]) -> None:
    admin = client(fake_server, seen)
    made = create(admin, username="pusher", password=PASSWORD)
    writes: list[tuple[str, dict[str, Any]]] = [
        (CREATE, {"input": {"name": "x", "url": "127.0.0.1:5000"}}),
        (UPDATE, {"id": made["id"], "input": {"url": "attacker.example.com", "password": ""}}),
        (DELETE, {"id": made["id"]}),
        (TEST, {"id": made["id"]}),
    ]
    for scope in (Scope.READ, Scope.DEPLOY):
        weak = client(fake_server, seen, scope)
        for query, variables in writes:
            error = refused(weak, query, **variables)
            assert error.codes == ["FORBIDDEN"], (scope, query)
            assert "lacks the ADMIN scope" in error.errors[0]["message"]
        assert weak(LIST)["registries"] == [made]  # reading is READ: no secret in it
    nobody = client(fake_server, seen, None)
    for query, variables in [*writes, (LIST, {}), (ONE, {"id": made["id"]})]:
        assert refused(nobody, query, **variables).codes == ["UNAUTHENTICATED"]
    assert admin(LIST)["registries"] == [made]


def test_applications_point_at_registries_and_block_their_deletion(
    fake_server: Server, seen: list[str], logs: Any
) -> None:
    admin = client(fake_server, seen)
    home = create(admin, username="pusher", password=PASSWORD)
    spare = create(admin, name="spare", url="127.0.0.1:5000")
    deployer = client(fake_server, seen, Scope.DEPLOY)  # chooses among ADMIN's registries
    app = deployer(CREATE_APP_REG, input=GIT_APP(registryId=home["id"]))["createApplication"]
    assert (app["registryId"], app["rollbackRegistryId"]) == (home["id"], None)
    other = deployer(CREATE_APP_REG, input=GIT_APP(name="other", rollbackRegistryId=home["id"]))[
        "createApplication"
    ]

    error = refused(admin, DELETE, id=home["id"])
    assert error.codes == ["CONFLICT"]
    message = error.errors[0]["message"]
    assert "'web' (registryId)" in message and "'other' (rollbackRegistryId)" in message

    unknown = refused(deployer, UPDATE_APP, id=app["id"], input={"registryId": "nope"})
    assert unknown.codes == ["BAD_USER_INPUT"]
    assert "registryId 'nope': no such registry" in unknown.errors[0]["message"]
    bad_create = refused(
        deployer, CREATE_APP_REG, input=GIT_APP(name="x", rollbackRegistryId="0" * 24)
    )
    assert "rollbackRegistryId" in bad_create.errors[0]["message"]
    reader = client(fake_server, seen, Scope.READ)
    assert refused(reader, UPDATE_APP, id=app["id"], input={"registryId": spare["id"]}).codes == [
        "FORBIDDEN"
    ]

    # omitted keeps, another id moves, explicit null clears
    kept = deployer(UPDATE_APP, id=app["id"], input={"name": "web2"})["updateApplication"]
    assert kept["registryId"] == home["id"]
    moved = deployer(
        UPDATE_APP, id=app["id"], input={"registryId": spare["id"], "rollbackRegistryId": None}
    )["updateApplication"]
    assert (moved["registryId"], moved["rollbackRegistryId"]) == (spare["id"], None)
    still = refused(admin, DELETE, id=home["id"])
    assert "'other' (rollbackRegistryId)" in still.errors[0]["message"]
    assert "web2" not in still.errors[0]["message"]
    deployer(UPDATE_APP, id=other["id"], input={"rollbackRegistryId": None})
    assert admin(DELETE, id=home["id"]) == {"deleteRegistry": True}
    # the application's own pull credentials are untouched by all of it
    assert moved["hasRegistryPassword"] is False
    assert_nowhere(PASSWORD, fake_server, seen, logs)


def test_pull_credentials_keep_working_beside_a_registry(
    fake_server: Server, fakes: Fakes, seen: list[str]
) -> None:
    admin = client(fake_server, seen)
    home = create(admin, username="pusher", password=PASSWORD)
    deployer = client(fake_server, seen, Scope.DEPLOY)
    image_app = {
        "name": "img",
        "sourceType": "DOCKER",
        "dockerImage": "127.0.0.1:5001/acme/web:1",
        "registryUsername": "puller",
        "registryPassword": "pull-pw-123",
        "registryId": home["id"],
    }
    made = deployer(CREATE_APP_REG, input=image_app)["createApplication"]
    assert made["hasRegistryPassword"] is True and made["registryId"] == home["id"]
    dep = deployer(DEPLOY, id=made["id"])["deployApplication"]
    assert wait_finished(deployer, dep["id"])["status"] == "DONE"
    image, auth = fakes.runtime.pulled[-1]
    assert image == "127.0.0.1:5001/acme/web:1" and auth is not None
    assert (auth.username, auth.password, auth.registry) == (
        "puller",
        "pull-pw-123",
        "127.0.0.1:5001",
    )


def test_create_app_document_still_works_without_registry_fields(fake_server: Server) -> None:
    made = fake_server.client(Scope.DEPLOY)(CREATE_APP, input=GIT_APP())["createApplication"]
    assert made["name"] == "web"
