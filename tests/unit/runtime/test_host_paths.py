"""Which host paths may be bind-mounted: protected paths never, other paths by ADMIN keys
or under the operator's prefixes; resolved through symlinks on this host."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from app.errors import BadInput, Forbidden, ReleaseError
from app.runtime.host_paths import HostPathPolicy, admin_binds
from app.runtime.spec import mount
from app.settings import Settings
from app.types import MountSpec


def _policy(tmp_path: Path, prefixes: str = "", docker_host: str | None = None) -> HostPathPolicy:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        data_dir=tmp_path / "data",
        allowed_bind_prefixes=prefixes,
        docker_host=docker_host,
    )
    return HostPathPolicy.from_settings(settings)


@pytest.mark.parametrize(
    "source",
    [
        "/",
        "//",
        "/var/run/docker.sock",
        "/run/docker.sock",
        "/var/run",
        "/run",
        "/var",
        "/proc",
        "/proc/1/root",
        "/sys/fs/cgroup",
        "/dev",
        "/etc",
        "/etc/shadow",
        "/boot",
        "/root/.ssh",
        "/var/lib/docker",
        "/var/lib/docker/volumes",
        "/var/lib",
        "/run/containerd/containerd.sock",
        "/var/lib/containerd",
    ],
)
def test_protected_paths_are_refused_even_for_admin(tmp_path: Path, source: str) -> None:
    with pytest.raises(BadInput, match="gives the container the host"):
        _policy(tmp_path).authorize(source, admin=True)


def test_the_data_dir_its_contents_and_its_parents_are_refused(tmp_path: Path) -> None:
    policy = _policy(tmp_path)
    for source in (tmp_path / "data", tmp_path / "data" / "secret.key", tmp_path, tmp_path.parent):
        with pytest.raises(BadInput, match="gives the container the host"):
            policy.authorize(str(source), admin=True)
    assert policy.authorize(str(tmp_path / "other"), admin=True) == str(tmp_path / "other")


def test_the_docker_host_socket_and_its_folder_are_refused(tmp_path: Path) -> None:
    sock = tmp_path / "engine" / "docker.sock"
    policy = _policy(tmp_path, docker_host=f"unix://{sock}")
    for source in (sock, sock.parent):
        with pytest.raises(BadInput):
            policy.authorize(str(source), admin=True)


@pytest.mark.parametrize("source", ["relative/path", "srv/data", "", "/srv/../etc", "/a\nb"])
def test_relative_dotdot_and_control_paths_are_refused(tmp_path: Path, source: str) -> None:
    with pytest.raises(BadInput):
        _policy(tmp_path).authorize(source, admin=True)


def test_a_symlink_to_root_or_to_the_data_dir_is_refused(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "to-root").symlink_to("/")
    (tmp_path / "to-data").symlink_to(tmp_path / "data")
    policy = _policy(tmp_path)
    for link in ("to-root", "to-data"):
        with pytest.raises(BadInput, match="resolves to"):
            policy.authorize(str(tmp_path / link), admin=True)


def test_deploy_keys_bind_only_under_the_configured_prefixes(tmp_path: Path) -> None:
    apps = tmp_path / "apps"
    (apps / "web").mkdir(parents=True)
    (tmp_path / "apps-evil").mkdir()
    (apps / "escape").symlink_to(tmp_path / "apps-evil")
    policy = _policy(tmp_path, prefixes=f"{apps}, /nonexistent/prefix")
    assert policy.authorize(str(apps / "web"), admin=False) == str(apps / "web")
    assert policy.authorize(str(apps / "not-yet"), admin=False) == str(apps / "not-yet")
    for source in (tmp_path / "apps-evil", apps / "escape", tmp_path / "elsewhere"):
        with pytest.raises(Forbidden, match="needs an ADMIN key"):
            policy.authorize(str(source), admin=False)
    with pytest.raises(Forbidden, match="SLIPWAY_ALLOWED_BIND_PREFIXES is empty"):
        _policy(tmp_path).authorize(str(apps / "web"), admin=False)


def test_a_prefix_never_opens_a_protected_path(tmp_path: Path) -> None:
    policy = _policy(tmp_path, prefixes="/")
    assert policy.authorize("/srv/x", admin=False) == "/srv/x"
    for source in ("/", "/proc", "/var/run/docker.sock", str(tmp_path / "data")):
        with pytest.raises(BadInput):
            policy.authorize(source, admin=False)


def test_check_release_refuses_unapproved_and_protected_binds(tmp_path: Path) -> None:
    policy = _policy(tmp_path)
    shared = str(tmp_path / "shared")
    binds = (MountSpec(type="bind", source=shared, target="/s"),)
    policy.check_release(binds, {shared})  # an ADMIN key set it
    policy.check_release((MountSpec(type="volume", source="data", target="/d"),), ())
    with pytest.raises(ReleaseError, match="not set by an ADMIN key"):
        policy.check_release(binds, ())
    with pytest.raises(ReleaseError, match="gives the container the host"):
        policy.check_release((MountSpec(type="bind", source="/", target="/h"),), {"/"})
    with pytest.raises(ReleaseError, match="not allowed"):
        policy.check_release((MountSpec(type="tmpfs", source="", target="/t"),), ())


def test_admin_binds_reads_the_mark() -> None:
    mounts = [
        {"type": "bind", "source": "/a", "target": "/a", "admin": True},
        {"type": "bind", "source": "/b", "target": "/b"},
        {"type": "volume", "source": "v", "target": "/v", "admin": True},
    ]
    assert admin_binds(mounts) == frozenset({"/a"})


@pytest.mark.parametrize("source", ["/", "/var/run/docker.sock", "/proc", "/etc/../etc", "rel"])
def test_the_swarm_spec_never_carries_a_protected_bind(source: str) -> None:
    with pytest.raises(ReleaseError):
        mount(MountSpec(type="bind", source=source, target="/host"))
    assert mount(MountSpec(type="bind", source="/srv/data", target="/d"))["Source"] == "/srv/data"


def test_realpath_is_what_this_host_sees(tmp_path: Path) -> None:
    """The symlink check uses the API host's view; a path that does not exist yet is
    judged as written."""
    missing = tmp_path / "not" / "there"
    assert os.path.realpath(missing) == str(missing)
    assert _policy(tmp_path).authorize(str(missing), admin=True) == str(missing)


def test_the_service_spec_grants_no_host_privileges() -> None:
    """Nothing a key can set reaches capabilities, privileged mode, devices, the host's
    network, PID or IPC namespaces: the task template holds only these keys."""
    from app.runtime.spec import swarm_service_args
    from app.types import HealthCheckSpec, PortSpec, ServiceSpec

    spec = ServiceSpec(
        name="web",
        image="busybox:1.36",
        env={"A": "b"},
        ports=(PortSpec(published_port=8080, target_port=80),),
        mounts=(MountSpec(type="volume", source="data", target="/data"),),
        health_check=HealthCheckSpec(test=("CMD", "true")),
        command=("sleep", "1"),
        labels={"x": "y"},
    )
    template = swarm_service_args(spec).task_template
    assert set(template) <= {"ContainerSpec", "Resources", "RestartPolicy", "ForceUpdate"}
    assert set(template["ContainerSpec"]) <= {
        "Image", "Command", "Args", "Env", "Labels", "Healthcheck", "Mounts",
    }  # fmt: skip
    assert swarm_service_args(spec).networks is None
