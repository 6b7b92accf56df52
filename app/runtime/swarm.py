"""The Docker Swarm runtime: create or update a service, then prove it healthy."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from docker.client import DockerClient
from docker.errors import APIError, DockerException, NotFound

from app.errors import ReleaseError, Unavailable
from app.runtime.base import PulledImage, Release
from app.runtime.images import authed_api, pull_image
from app.runtime.mesh import IngressFallback, MeshVerdicts, for_engine, ingress_ports
from app.runtime.redact import redact
from app.runtime.spec import MANAGED_LABEL, from_swarm, swarm_service_args
from app.runtime.tasks import strip_digest
from app.runtime.verify import Verification
from app.runtime.volumes import check_volumes
from app.types import CancelToken, LogFn, LogStream, RegistryAuth, ServiceSpec

logger = logging.getLogger(__name__)
SYSTEM = LogStream.SYSTEM
INSTANCE_LABEL = "slipway.instance"

POLL_INTERVAL_S = 0.5
MAX_FAILED_TASKS = 3
MIN_RUNNING_S = 3.0


class SwarmRuntime:
    """:class:`~app.runtime.base.Runtime` on a Docker engine in Swarm mode.

    ``probe_host`` is where published ports are probed from here (host-mode ports
    answer on the node's own addresses; 127.0.0.1 when the engine is local).
    ``max_failed_tasks`` ended tasks of a release make it a crash loop; tasks count as
    up once seen running for ``min_running_s``. ``ingress_fallback`` is what to do with
    INGRESS ports where the routing mesh does not route (:mod:`app.runtime.mesh`).
    ``instance``: this installation's ``slipway.instance`` label; image retention leaves
    images labelled with another installation's.
    """

    def __init__(
        self,
        client: DockerClient,
        *,
        probe_host: str = "127.0.0.1",
        poll_interval: float = POLL_INTERVAL_S,
        max_failed_tasks: int = MAX_FAILED_TASKS,
        min_running_s: float = MIN_RUNNING_S,
        ingress_fallback: IngressFallback = IngressFallback.HOST,
        instance: str | None = None,
    ) -> None:
        self._client = client
        self._instance = instance
        self._fallback = ingress_fallback
        self._mesh = MeshVerdicts()
        self._engine_id: str | None = None
        self._probe_host = probe_host
        self._poll_interval = poll_interval
        self._max_failed_tasks = max_failed_tasks
        self._min_running_s = min_running_s

    def pull(
        self, image: str, *, auth: RegistryAuth | None, log: LogFn, cancel: CancelToken
    ) -> PulledImage:
        """Pull ``image`` and pin it by digest (see :mod:`app.runtime.images`)."""
        return pull_image(self._client.api, image, auth=auth, log=log, cancel=cancel)

    def release(self, spec: ServiceSpec, *, log: LogFn) -> Release:
        """Create the service or update it in place to ``spec`` (the whole spec)."""
        action = "look up"
        try:
            current = self._find(spec.name)
            action = "create" if current is None else "update"
            check_volumes(self._client.api, spec)
            if current is not None:
                _require_managed(current, spec.name)
            routes = self._mesh.get(self._engine()) if ingress_ports(spec) else None
            spec = for_engine(spec, routes=routes, mode=self._fallback, log=log)
            if current is None:
                release = self._create(spec, log)
            else:
                release = self._update(current, spec, log)
            return replace(release, ports=spec.ports)
        except APIError as exc:
            detail = redact(str(exc.explanation or exc), spec.env)
            raise ReleaseError(f"Docker refused to {action} service {spec.name}: {detail}") from exc
        except (DockerException, OSError) as exc:
            detail = redact(str(exc), spec.env)
            raise ReleaseError(f"cannot reach the Docker engine: {detail}") from exc

    def verify(
        self,
        spec: ServiceSpec,
        release: Release,
        *,
        timeout: float,
        log: LogFn,
        cancel: CancelToken,
    ) -> None:
        """Return when converged, running, healthy and answering; raise HealthCheckError.

        An INGRESS port found not to route is switched to host mode in place (or refused),
        as ``ingress_fallback`` says, within the same ``timeout``.
        """
        Verification(
            self._client,
            probe_host=self._probe_host,
            poll_interval=self._poll_interval,
            max_failed_tasks=self._max_failed_tasks,
            min_running_s=self._min_running_s,
            fallback=self._fallback,
            mesh=self._mesh,
            engine_id=self._engine,
        ).run(spec, release, timeout=timeout, log=log, cancel=cancel)

    def mesh_routes(self) -> bool | None:
        """Does the routing mesh route on this engine? None until a deployment found out."""
        return self._mesh.get(self._engine())

    def _engine(self) -> str:
        """The engine's Docker ID, the key of its mesh verdict (read once per runtime)."""
        if self._engine_id is None:
            self._engine_id = str(self._client.api.info().get("ID") or "unknown")
        return self._engine_id

    def undo(self, spec: ServiceSpec, release: Release, *, log: LogFn) -> None:
        """Roll the service back to its spec from before ``release`` (or remove a new one).

        Swarm then replaces the new tasks with ones of the previous spec; this does not
        wait for that, so that a cancel ends promptly.
        """
        try:
            if release.created or release.previous_spec is None:
                log(f"removing service {spec.name}, created by this deployment", stream=SYSTEM)
                self.remove(spec.name)
                return
            current = self._client.api.inspect_service(release.service_id)
            previous = release.previous_spec
            template = dict(previous["TaskTemplate"])
            # A changed counter makes Swarm replace the tasks even if nothing else differs.
            template["ForceUpdate"] = int(current["Spec"]["TaskTemplate"].get("ForceUpdate", 0)) + 1
            log(
                f"rolling service {spec.name} back to its previous spec "
                f"(image {release.previous_image})",
                stream=SYSTEM,
            )
            self._client.api.update_service(
                release.service_id,
                current["Version"]["Index"],
                task_template=template,
                name=previous.get("Name"),
                labels=previous.get("Labels"),
                mode=previous.get("Mode"),
                update_config=previous.get("UpdateConfig"),
                rollback_config=previous.get("RollbackConfig"),
                networks=previous.get("TaskTemplate", {}).get("Networks"),
                endpoint_spec=previous.get("EndpointSpec"),
                fetch_current_spec=False,
            )
        except (DockerException, OSError) as exc:
            raise ReleaseError(
                f"could not roll service {spec.name} back: {redact(str(exc), spec.env)}"
            ) from exc

    def restore(
        self,
        spec: ServiceSpec,
        release: Release,
        *,
        health_check_path: str | None,
        timeout: float,
        log: LogFn,
        cancel: CancelToken,
    ) -> str:
        """Undo ``release`` (the previous spec, its tasks replaced), then verify that spec
        as any release is verified: only tasks started after the undo count."""
        if release.created or release.previous_spec is None:
            raise ReleaseError(f"service {spec.name} was created by this release: no previous spec")
        try:
            before = frozenset(
                t["ID"] for t in self._client.api.tasks(filters={"service": release.service_id})
            )
        except (DockerException, OSError) as exc:
            raise ReleaseError(
                f"could not read the tasks of {spec.name}: {redact(str(exc), spec.env)}"
            ) from exc
        self.undo(spec, release, log=log)
        previous = from_swarm(release.previous_spec, health_check_path=health_check_path)
        restored = Release(
            service_id=release.service_id,
            created=False,
            previous_image=spec.image,
            previous_tasks=before,
        )
        log(f"waiting up to {timeout:g}s for {previous.image} to answer again", stream=SYSTEM)
        self.verify(previous, restored, timeout=timeout, log=log, cancel=cancel)
        return previous.image

    def prune_images(self, keep_deployments: Callable[[list[str]], set[str]]) -> list[str]:
        """Remove images labelled with a deployment that no longer exists (not in use)."""
        try:
            images = self._client.api.images(filters={"label": "slipway.deployment"})
        except (DockerException, OSError) as exc:
            raise Unavailable(f"could not list images: {exc}") from exc
        by_deployment = {
            (img.get("Labels") or {}).get("slipway.deployment", ""): img
            for img in images
            if self._ours(img.get("Labels") or {})
        }
        alive = keep_deployments([d for d in by_deployment if d])
        removed = []
        for dep_id, img in by_deployment.items():
            if not dep_id or dep_id in alive:
                continue
            for tag in img.get("RepoTags") or [img["Id"]]:
                try:
                    self._client.api.remove_image(tag, noprune=False)
                    removed.append(tag)
                except NotFound:
                    continue
                except APIError as exc:  # in use by a container: keep it for now
                    logger.info("keeping image %s: %s", tag, exc.explanation or exc)
        return removed

    def image_present(self, image: str) -> bool:
        try:
            self._client.api.inspect_image(image)
        except NotFound:
            return False
        except (DockerException, OSError) as exc:
            raise Unavailable(f"could not look up image {image}: {exc}") from exc
        return True

    def remove_image(self, image: str) -> bool:
        """Kept while a running container uses the image; otherwise removed, forced past
        stopped containers (the ended tasks Swarm keeps as history would keep every old
        image). A forced removal by tag would only untag an image in use, leaving a running
        task unable to restart, so running containers are looked up first."""
        api = self._client.api
        try:
            image_id = api.inspect_image(image)["Id"]
            if any(c.get("ImageID") == image_id for c in api.containers()):
                logger.info("keeping image %s: a running container uses it", image)
                return False
            api.remove_image(image, force=True, noprune=False)
        except NotFound:
            return False
        except APIError as exc:
            logger.info("keeping image %s: %s", image, exc.explanation or exc)
            return False
        except (DockerException, OSError) as exc:
            raise Unavailable(f"could not remove image {image}: {exc}") from exc
        return True

    def _ours(self, labels: dict[str, str]) -> bool:
        """Made by this installation (or before images carried the label)."""
        theirs = labels.get(INSTANCE_LABEL)
        return theirs is None or self._instance is None or theirs == self._instance

    def drained(self, name: str) -> bool:
        """True once no container of service ``name`` is left on this engine."""
        label = f"com.docker.swarm.service.name={name}"
        try:
            return not self._client.api.containers(all=True, filters={"label": label})
        except (DockerException, OSError) as exc:
            raise Unavailable(f"could not list the containers of {name}: {exc}") from exc

    def remove(self, name: str) -> None:
        """Remove the service if it exists; :class:`Unavailable` when the engine fails."""
        try:
            current = self._find(name)
            if current is not None and not _managed(current):
                logger.warning("service %s is not managed by Slipway: not removed", name)
            elif current is not None:
                self._client.api.remove_service(current["ID"])
                logger.info("removed service %s", name)
        except NotFound:
            return
        except (DockerException, OSError) as exc:
            raise Unavailable(f"could not remove service {name}: {exc}") from exc

    def service_logs(self, name: str, *, tail: int = 20) -> list[str]:
        """The last ``tail`` lines the service's tasks wrote (stdout and stderr).

        Raises :class:`Unavailable` when the engine fails; [] when there is no service.
        """
        try:
            chunks = self._client.api.service_logs(
                name, stdout=True, stderr=True, tail=tail, is_tty=False
            )
            text = b"".join(chunks).decode("utf-8", "replace")
        except NotFound:
            return []
        except (DockerException, OSError) as exc:
            raise Unavailable(f"could not read the logs of service {name}: {exc}") from exc
        return text.splitlines()[-tail:]

    def _find(self, name: str) -> dict[str, Any] | None:
        # The name filter matches prefixes too: keep the exact name only.
        services: list[dict[str, Any]] = self._client.api.services(filters={"name": name})
        return next((s for s in services if s["Spec"]["Name"] == name), None)

    def _create(self, spec: ServiceSpec, log: LogFn) -> Release:
        args = swarm_service_args(spec)
        log(f"creating service {spec.name} with image {spec.image}", stream=LogStream.SYSTEM)
        api = authed_api(self._client.api, spec.registry_auth, spec.image)
        result = api.create_service(**args.as_kwargs())
        _log_warnings(result, log)
        return Release(service_id=result["ID"], created=True)

    def _update(self, current: dict[str, Any], spec: ServiceSpec, log: LogFn) -> Release:
        service_id: str = current["ID"]
        template = current["Spec"]["TaskTemplate"]
        previous_image: str = template["ContainerSpec"]["Image"]
        force_update = int(template.get("ForceUpdate", 0))
        if previous_image == spec.image or strip_digest(previous_image) == spec.image:
            # Same image: bump the counter so a redeploy still replaces the tasks.
            force_update += 1
            change = f"image {spec.image} unchanged, restarting its tasks"
        else:
            change = f"image {previous_image} -> {spec.image}"
        args = swarm_service_args(spec, force_update=force_update)
        log(f"updating service {spec.name}: {change}", stream=LogStream.SYSTEM)
        previous_tasks = frozenset(
            t["ID"] for t in self._client.api.tasks(filters={"service": service_id})
        )
        # fetch_current_spec=False: the new spec replaces the old one whole, so settings
        # removed from the spec (env, mounts, ports) are removed from the service.
        # With the registry's credentials (if any), so that every node can pull the image.
        api = authed_api(self._client.api, spec.registry_auth, spec.image)
        result = api.update_service(
            service_id, current["Version"]["Index"], fetch_current_spec=False, **args.as_kwargs()
        )
        _log_warnings(result, log)
        return Release(
            service_id=service_id,
            created=False,
            previous_image=previous_image,
            previous_tasks=previous_tasks,
            previous_spec=current["Spec"],
        )


def _managed(service: dict[str, Any]) -> bool:
    return (service.get("Spec", {}).get("Labels") or {}).get(MANAGED_LABEL) == "true"


def _require_managed(service: dict[str, Any], name: str) -> None:
    """An application may only replace a service Slipway made: any key that may deploy
    could otherwise take over another Swarm service (a proxy, a database) by its name."""
    if not _managed(service):
        raise ReleaseError(
            f"a Swarm service named {name} already exists and was not made by Slipway "
            f"(no {MANAGED_LABEL} label): not replacing it; give the application another appName"
        )


def _log_warnings(result: dict[str, Any] | None, log: LogFn) -> None:
    for warning in (result or {}).get("Warnings") or []:
        log(f"Docker warning: {warning}", stream=LogStream.SYSTEM)
