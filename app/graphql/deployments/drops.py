"""dropDeployment: store the uploaded ZIP under the new deployment's id, check it, queue it.

The archive is checked (central directory, limits, names, build folder) before the
deployment row exists, so a bad archive is a BAD_USER_INPUT error and leaves neither a
deployment nor a file behind.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from app.db.repos import applications
from app.errors import BadInput, Conflict
from app.graphql.context import AppState
from app.graphql.uploads import store_upload
from app.ids import new_id
from app.queue.submit import SourceOverride, Submitted, submit
from app.settings import Settings
from app.sources.archive import ArchiveLimits, check_build_path, drop_archive, inspect_archive
from app.sources.validate import validate_relative_path
from app.types import DeploymentTrigger, SourceType


def limits(settings: Settings) -> ArchiveLimits:
    return ArchiveLimits(
        max_bytes=settings.max_upload_bytes,
        max_entries=settings.max_archive_entries,
        max_total=settings.max_archive_total,
        max_ratio=settings.max_compression_ratio,
    )


async def accept_drop(
    state: AppState,
    *,
    application_id: str,
    upload: object,
    build_path: str | None,
    title: str | None = None,
    description: str | None = None,
) -> Submitted:
    """Queue a DROP deployment of ``upload``; BadInput when the archive cannot be used."""
    if not isinstance(upload, UploadFile):
        raise BadInput("zip must be a file part of a multipart request (GraphQL multipart spec)")
    rel = validate_relative_path(build_path or "/", "dropBuildPath")
    app_name, kind = await run_in_threadpool(_app, state, application_id)
    if kind is not SourceType.DROP:
        raise Conflict(f"a {kind.value} application cannot take a dropped archive; use DROP")
    dep_id = new_id()
    dest = drop_archive(state.settings.work_dir / app_name, dep_id)
    try:
        await run_in_threadpool(store_upload, upload, dest)
        await upload.close()
        plan = await run_in_threadpool(inspect_archive, dest, limits(state.settings))
        check_build_path(plan, rel)
        return await run_in_threadpool(
            lambda: submit(
                settings=state.settings,
                db=state.db,
                bus=state.hub.bus,
                queue=state.queue,
                application_id=application_id,
                trigger=DeploymentTrigger.DROP,
                title=title,
                description=description,
                source=SourceOverride(build_path=rel),
                deployment_id=dep_id,
            )
        )
    except BaseException:
        dest.unlink(missing_ok=True)
        raise


def _app(state: AppState, application_id: str) -> tuple[str, SourceType]:
    with state.db.session() as session:
        app = applications.require(session, application_id)
        return app.app_name, SourceType(app.source_type)
