"""The pipeline steps. Each does one thing and records its result on the context."""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Protocol, TypeVar

from docker.errors import DockerException

from app.builders.cache import CacheLedger, clear_cached_images
from app.engine.context import RunContext
from app.engine.release_spec import RollbackPointGone
from app.errors import (
    BadInput,
    BuildError,
    Cancelled,
    RegistryError,
    RegistryNetworkError,
    SlipwayError,
    SourceError,
    SourceNetworkError,
)
from app.sources.archive import check_build_path, drop_archive, extract_archive
from app.sources.base import FetchResult
from app.types import BuildSpec, DeploymentTrigger, RegistryAuth, ServiceSpec, Step

RETRY_BASE_S = 1.0  # fetch and push retries wait 1, 2, 4 ... seconds; a build is never retried

T = TypeVar("T")


class PipelineStep(Protocol):
    step: Step

    def run(self, ctx: RunContext) -> None: ...


def with_fetch_retries(ctx: RunContext, fetch: Callable[[], T]) -> T:
    """``fetch()``, tried again after a network error up to ``ctx.fetch_retries`` times
    (a fetch, a pull or a push; refused credentials are never network errors)."""
    attempt = 1
    while True:
        try:
            return fetch()
        except (SourceNetworkError, RegistryNetworkError) as exc:
            if attempt > ctx.fetch_retries:
                raise
            delay = RETRY_BASE_S * 2 ** (attempt - 1)
            ctx.say(f"{exc}; network error, retrying in {delay:g}s ({attempt}/{ctx.fetch_retries})")
            if ctx.cancel.wait(delay):
                raise Cancelled(ctx.cancel.reason) from exc
            attempt += 1


class FetchGit:
    """Fetch the branch, tag or commit into a fresh directory, then swap it in as the code."""

    step = Step.FETCH_SOURCE

    def run(self, ctx: RunContext) -> None:
        app = ctx.deployment.app
        if ctx.deployment.trigger is DeploymentTrigger.REBUILD:
            return self._reuse(ctx)
        if app.git is None:
            raise SourceError("the application has no repository configured")
        incoming = ctx.workspace.incoming(ctx.deployment.id)
        incoming.parent.mkdir(parents=True, exist_ok=True)
        git = app.git

        def clone() -> FetchResult:
            shutil.rmtree(incoming, ignore_errors=True)
            try:
                return ctx.adapters.git.clone(git, incoming, log=ctx.log, cancel=ctx.cancel)
            except BaseException:
                shutil.rmtree(incoming, ignore_errors=True)
                raise

        result = with_fetch_retries(ctx, clone)
        shutil.rmtree(ctx.workspace.code, ignore_errors=True)
        incoming.rename(ctx.workspace.code)
        ctx.commit_sha = result.commit_sha
        ctx.known_hosts = result.known_hosts

    def _reuse(self, ctx: RunContext) -> None:
        if not ctx.workspace.code.is_dir():
            raise SourceError("nothing to rebuild: no source has been fetched yet; deploy first")
        sha = ctx.extra.get("previous_commit_sha")
        ctx.commit_sha = sha
        ctx.say(f"Rebuilding the source already fetched ({sha or 'unknown commit'}), no fetch")


class FetchDrop:
    """Extract the uploaded ZIP into a fresh directory and swap its build folder in as the
    code; the archive is deleted once extracted. Other triggers rebuild the last drop."""

    step = Step.FETCH_SOURCE
    STALE_ARCHIVE_S = 3600.0  # an older one belongs to a deployment cancelled while queued

    def run(self, ctx: RunContext) -> None:
        if ctx.deployment.trigger is not DeploymentTrigger.DROP:
            return self._reuse(ctx)
        archive = drop_archive(ctx.workspace.root, ctx.deployment.id)
        if not archive.is_file():
            raise SourceError("the uploaded archive of this deployment is gone; upload it again")
        incoming = ctx.workspace.incoming(ctx.deployment.id)
        shutil.rmtree(incoming, ignore_errors=True)
        try:
            plan = extract_archive(archive, incoming, check=ctx.cancel.check)
            rel = check_build_path(plan, ctx.deployment.build_path)
            if not (incoming / rel).is_dir():
                raise BadInput(f"dropBuildPath {rel!r} is not a folder in the archive")
        except BaseException as exc:
            shutil.rmtree(incoming, ignore_errors=True)
            if isinstance(exc, BadInput):
                raise SourceError(str(exc)) from exc
            raise
        shutil.rmtree(ctx.workspace.code, ignore_errors=True)
        (incoming / rel).rename(ctx.workspace.code)
        shutil.rmtree(incoming, ignore_errors=True)  # what lay outside the build folder
        archive.unlink()
        self._sweep(archive)
        top = f" (top folder {plan.stripped!r} stripped)" if plan.stripped else ""
        ctx.say(f"Extracted {plan.files} files, {plan.total_bytes} bytes{top}; building {rel}")

    def _reuse(self, ctx: RunContext) -> None:
        if not ctx.workspace.code.is_dir():
            raise SourceError("nothing to rebuild: no archive has been dropped yet")
        ctx.say("Rebuilding the files of the last dropped archive, no upload")

    def _sweep(self, archive: Path) -> None:
        """Archives of earlier deployments that never ran (cancelled while queued)."""
        cutoff = time.time() - self.STALE_ARCHIVE_S
        for old in archive.parent.glob("*.zip"):
            with contextlib.suppress(OSError):
                if old.name < archive.name and old.stat().st_mtime < cutoff:
                    old.unlink()


class BuildImage:
    """Build ``slipway/<appName>:<deploymentId>``: one immutable tag per deployment."""

    step = Step.BUILD_IMAGE

    def run(self, ctx: RunContext) -> None:
        app = ctx.deployment.app
        builder = ctx.adapters.builders.get(app.build_type)
        if builder is None:
            raise BuildError(f"no builder for build type {app.build_type.value}")
        tag = f"slipway/{app.app_name}:{ctx.deployment.id}"
        no_cache = ctx.deployment.clean_cache
        spec = BuildSpec(
            source_dir=ctx.workspace.code,
            tag=tag,
            dockerfile=app.dockerfile,
            context_path=app.context_path,
            build_args=app.build_args,
            labels={
                "slipway.application": app.id,
                "slipway.deployment": ctx.deployment.id,
                **({"slipway.instance": ctx.instance} if ctx.instance else {}),
            },
            no_cache=no_cache,
            target=app.build_stage,
            secrets=app.build_secrets,
            memory_limit=app.build_memory_limit,
            cpu_limit=app.build_cpu_limit,
            proxy=dict(ctx.build_proxy),
            cache_ledger=ctx.workspace.build_cache_ledger,
        )
        ctx.say(f"Building {tag} with {app.build_type.value}")
        if ctx.deployment.cache_cleared:
            clear_build_cache(ctx)
        if no_cache:
            ctx.say(f"Building without cache and pulling base images fresh: {_why_clean(ctx)}")
        if ctx.build_proxy:
            ctx.say("Builds go through the proxy set in SLIPWAY_BUILD_*_PROXY")
        image_id = builder.build(spec, log=ctx.log, cancel=ctx.cancel)
        ctx.say(f"Built {tag} ({image_id})")
        ctx.image_ref = tag


class PushImage:
    """Push the built image to the application's registry as
    ``<host>/<imagePrefix>/<appName>:<deploymentId>`` (one immutable tag per deployment) and
    release it by the digest the push reported, with the registry's credentials, so any
    Swarm node can pull it. Network errors are retried like a fetch; refused credentials
    end the deployment at once."""

    step = Step.PUSH_IMAGE

    def run(self, ctx: RunContext) -> None:
        app = ctx.deployment.app
        target = app.registry
        assert target is not None and ctx.image_ref is not None, "PUSH_IMAGE follows a build"
        pusher = ctx.adapters.pusher
        if pusher is None:
            raise RegistryError("this worker has no image pusher: cannot push to a registry")
        image, tag = ctx.image_ref, ctx.deployment.id
        repository = target.repository(app.app_name)
        who = f", user {target.auth.username}" if target.auth else ""
        ctx.say(f"Pushing {image} to {repository}:{tag} (registry {target.name!r}{who})")
        pushed = with_fetch_retries(
            ctx,
            lambda: pusher.push(
                image,
                target=target,
                repository=repository,
                tag=tag,
                log=ctx.log,
                cancel=ctx.cancel,
            ),
        )
        ctx.image_ref = pushed.ref
        ctx.registry_id = target.id
        ctx.registry_auth = target.auth
        ctx.say(f"Releasing {pushed.ref}")


def _why_clean(ctx: RunContext) -> str:
    if ctx.deployment.cache_cleared:
        return "the build cache was cleared (clearBuildCache)"
    if ctx.deployment.app.clean_cache:
        return "cleanCache is on for the application"
    return "cleanCache was asked for this deployment"


def clear_build_cache(ctx: RunContext) -> None:
    """What ``clearBuildCache`` asked for and no engine was there to do at the time."""
    if ctx.adapters.engine is None:
        return
    try:
        cleared = clear_cached_images(
            ctx.adapters.engine.client(), CacheLedger(ctx.workspace.build_cache_ledger)
        )
    except (DockerException, OSError, SlipwayError) as exc:
        ctx.say(f"Could not remove the cached build images: {exc}")
        return
    if cleared.removed:
        ctx.say(f"Removed {cleared.removed} cached build images of the application")


class UseImage:
    """A DOCKER source: pull the image (with the app's registry credentials) and pin it.

    The release uses ``repo@sha256:...``, so the deployment records exactly what ran
    even if the tag moves later; a local-only image is pinned by its image ID.
    """

    step = Step.FETCH_SOURCE

    def run(self, ctx: RunContext) -> None:
        app = ctx.deployment.app
        image = app.docker_image
        if not image:
            raise SourceError("the application has no dockerImage configured")
        pulled = with_fetch_retries(
            ctx,
            lambda: ctx.adapters.runtime.pull(
                image, auth=app.registry_auth, log=ctx.log, cancel=ctx.cancel
            ),
        )
        if pulled.digest is None:
            ctx.say(
                f"{image} is a local image with no registry digest (built or loaded on this "
                f"engine, never pushed): deploying it by its image ID {pulled.image_id}; "
                "other Swarm nodes cannot pull it"
            )
        else:
            ctx.say(f"Pulled {image} ({pulled.digest})")
        if app.registry is not None:
            ctx.say(f"Registry {app.registry.name!r} is not pushed to: image sources run as pulled")
        ctx.image_ref = pulled.ref


class ReleaseService:
    """Create the Swarm service or update it in place to the new image and settings; a
    ROLLBACK releases its rollback point's snapshot instead of the application's settings."""

    step = Step.RELEASE

    def run(self, ctx: RunContext) -> None:
        app = ctx.deployment.app
        assert ctx.image_ref is not None, "RELEASE runs after an image is known"
        labels = {"slipway.application": app.id, "slipway.deployment": ctx.deployment.id}
        # a pushed image: its registry's credentials; else the pull credentials
        auth = ctx.registry_auth or app.registry_auth
        if ctx.rollback is not None:
            old = ctx.rollback.service
            ctx.service = replace(
                old,
                name=app.app_name,
                image=ctx.image_ref,
                labels={**old.labels, **labels},
                endpoint_mode=ctx.endpoint_mode,
                registry_auth=auth,
            )
        else:
            ctx.service = ServiceSpec(
                name=app.app_name,
                image=ctx.image_ref,
                env=app.env,
                ports=app.ports,
                mounts=app.mounts,
                replicas=app.replicas,
                cpu_limit=app.cpu_limit,
                memory_limit=app.memory_limit,
                health_check=app.health_check,
                health_check_path=app.health_check_path,
                labels={**app.labels, **labels},
                command=app.command,
                endpoint_mode=ctx.endpoint_mode,
                registry_auth=auth,
            )
        ctx.cancel.check()
        ctx.release = ctx.adapters.runtime.release(ctx.service, log=ctx.log)


class VerifyHealth:
    """DONE only once converged, running, healthy and answering; else ERROR."""

    step = Step.VERIFY_HEALTH

    def run(self, ctx: RunContext) -> None:
        assert ctx.service is not None and ctx.release is not None
        timeout = ctx.deployment.app.health_timeout or ctx.health_timeout
        if ctx.rollback is not None:  # as long as that release was given
            timeout = ctx.rollback.health_timeout or ctx.health_timeout
        ctx.say(f"Waiting up to {timeout:g}s for {ctx.service.name} to become healthy")
        ctx.adapters.runtime.verify(
            ctx.service, ctx.release, timeout=timeout, log=ctx.log, cancel=ctx.cancel
        )
        ctx.say(f"{ctx.service.name} is healthy")


class RestorePrevious:
    """After VERIFY_HEALTH failed on an update: put the previous release's spec back and
    wait until that version answers again (``Runtime.restore``). The runner runs it only
    with ``restoreOnFailure`` and a release that replaced a running version."""

    step = Step.RESTORE

    def run(self, ctx: RunContext) -> None:
        assert ctx.service is not None and ctx.release is not None
        name = ctx.service.name
        # At least the default: the failed tasks must stop before the old ones start again.
        timeout = max(ctx.deployment.app.health_timeout or 0.0, ctx.health_timeout)
        ctx.say(
            f"The new version of {name} failed verification; restoring the previous release "
            f"(image {ctx.release.previous_image}) because restoreOnFailure is on"
        )
        ctx.restored_image = ctx.adapters.runtime.restore(
            ctx.service,
            ctx.release,
            health_check_path=ctx.previous_health_path or ctx.service.health_check_path,
            timeout=timeout,
            log=ctx.log,
            cancel=ctx.cancel,
        )
        ctx.say(f"Restored {name} to {ctx.restored_image}: the previous version answers again")


class UseRollbackPoint:
    """A ROLLBACK's first step, instead of fetch and build: the earlier deployment's image
    and release snapshot, which RELEASE then releases and VERIFY_HEALTH verifies."""

    step = Step.ROLLBACK_POINT

    def run(self, ctx: RunContext) -> None:
        snap = ctx.deployment
        point = snap.rollback_point
        if point is None:
            raise SourceError(snap.rollback_problem or "the deployment has no rollback point")
        app = snap.app
        runtime = ctx.adapters.runtime
        image, auth = point.image, _auth_for(point.image, ctx)
        if not _pullable(image) and not runtime.image_present(image):
            if point.registry_ref is None:
                raise RollbackPointGone(
                    f"the image {image} of deployment {point.deployment_id} is gone from the "
                    "engine (removed outside Slipway): it cannot be rolled back to",
                    deployment_id=point.deployment_id,
                )
            ctx.say(f"{image} is gone from the engine: using its copy {point.registry_ref}")
            image = point.registry_ref
            target = app.rollback_registry
            auth = target.auth if target and target.id == point.registry_id else None
        ctx.say(
            f"rolling back to deployment {point.deployment_id} of {app.app_name}, image {image}"
        )
        ctx.say(
            "releasing what that deployment released (env, ports, mounts, limits, health "
            "check, command, replicas), not the application's current settings; no fetch, "
            "no build"
        )
        ctx.image_ref = image
        ctx.registry_auth = auth
        ctx.commit_sha = point.commit_sha
        ctx.rollback = point.released


class PushRollbackCopy:
    """With ``rollbackRegistryId``: after a verified release, a copy of its image goes to
    the rollback registry under its own tag ``rollback-<deploymentId>``, so the rollback
    point outlives the local image. A failed copy is logged; the deployment stays DONE
    with its local rollback point."""

    step = Step.ROLLBACK_COPY

    def run(self, ctx: RunContext) -> None:
        app = ctx.deployment.app
        target, pusher = app.rollback_registry, ctx.adapters.pusher
        assert target is not None and ctx.service is not None
        if pusher is None:
            ctx.say("this worker has no image pusher: no rollback copy pushed")
            return
        repository, tag = target.repository(app.app_name), f"rollback-{ctx.deployment.id}"
        ctx.say(f"Pushing a rollback copy of {ctx.service.image} to {repository}:{tag}")
        try:
            pushed = with_fetch_retries(
                ctx,
                lambda: pusher.push(
                    ctx.service.image if ctx.service else "",
                    target=target,
                    repository=repository,
                    tag=tag,
                    log=ctx.log,
                    cancel=ctx.cancel,
                ),
            )
        except RegistryError as exc:
            ctx.say(f"The rollback copy was not pushed ({exc}); the local rollback point stays")
            return
        ctx.rollback_copy = (target.id, f"{pushed.repository}:{tag}@{pushed.digest}")
        ctx.say(f"Rollback copy pushed: {pushed.repository}:{tag}@{pushed.digest}")


def _pullable(image: str) -> bool:
    """A registry reference by digest: Swarm pulls it wherever it is missing."""
    return "@sha256:" in image and not image.startswith("slipway/")


def _auth_for(image: str, ctx: RunContext) -> RegistryAuth | None:
    """The credentials of the registry ``image`` is on, among the application's."""
    app = ctx.deployment.app
    host = image.split("/", 1)[0]
    for target in (app.registry, app.rollback_registry):
        if target is not None and target.host == host:
            return target.auth
    return app.registry_auth
