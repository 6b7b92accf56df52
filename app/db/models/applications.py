"""Applications: where the source is, how to build it, how to run it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, IdMixin, UTCDateTime, utcnow


class Application(IdMixin, Base):
    __tablename__ = "applications"

    name: Mapped[str] = mapped_column(String(100))
    app_name: Mapped[str] = mapped_column(String(63), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="IDLE")
    source_type: Mapped[str] = mapped_column(String(16))
    repository: Mapped[str | None] = mapped_column(Text)
    repository_username: Mapped[str | None] = mapped_column(String(200))
    repository_password_enc: Mapped[str | None] = mapped_column(Text)
    branch: Mapped[str | None] = mapped_column(String(255))
    docker_image: Mapped[str | None] = mapped_column(String(500))
    build_type: Mapped[str] = mapped_column(String(32), default="DOCKERFILE")
    dockerfile: Mapped[str] = mapped_column(String(500), default="Dockerfile")
    context_path: Mapped[str] = mapped_column(String(500), default=".")
    # build arguments are secrets like env: values encrypted, names for display; the clear
    # ``build_args`` of rows older than 0004 is moved into ``build_args_enc`` at startup
    build_args: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    build_args_enc: Mapped[str | None] = mapped_column(Text)
    build_arg_keys: Mapped[list[str]] = mapped_column(JSON, default=list)
    env_enc: Mapped[str | None] = mapped_column(Text)  # encrypted {"KEY": "value"}
    env_keys: Mapped[list[str]] = mapped_column(JSON, default=list)  # names only, for display
    ports: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    mounts: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    replicas: Mapped[int] = mapped_column(Integer, default=1)
    cpu_limit: Mapped[float | None] = mapped_column(Float)
    memory_limit: Mapped[int | None] = mapped_column(Integer)
    health_check_command: Mapped[list[str] | None] = mapped_column(JSON)
    health_check_path: Mapped[str | None] = mapped_column(String(500))
    health_timeout: Mapped[float | None] = mapped_column(Float)
    command: Mapped[list[str] | None] = mapped_column(JSON)
    server_id: Mapped[str | None] = mapped_column(String(24))
    build_server_id: Mapped[str | None] = mapped_column(String(24))
    deploy_timeout: Mapped[float | None] = mapped_column(Float)  # seconds; None: the setting
    keep_deployments: Mapped[int | None] = mapped_column(Integer)  # None: the setting
    webhook_secret_enc: Mapped[str | None] = mapped_column(Text)
    # git over ssh: the private key (encrypted) and the pinned or first-seen host keys
    ssh_key_enc: Mapped[str | None] = mapped_column(Text)
    known_hosts: Mapped[str | None] = mapped_column(Text)
    submodules: Mapped[bool] = mapped_column(Boolean, default=False)
    # registry credentials for a DOCKER source (pull) and pushes
    registry_username: Mapped[str | None] = mapped_column(String(200))
    registry_password_enc: Mapped[str | None] = mapped_column(Text)
    registry_host: Mapped[str | None] = mapped_column(String(255))  # the credentials' registry
    # webhooks: what starts a deployment
    auto_deploy: Mapped[bool] = mapped_column(Boolean, default=True)
    trigger_type: Mapped[str] = mapped_column(String(8), default="PUSH")  # PUSH | TAG
    watch_paths: Mapped[list[str]] = mapped_column(JSON, default=list)
    # preview deployments of pull requests: settings on the parent ...
    preview_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    preview_limit: Mapped[int] = mapped_column(Integer, default=3)
    preview_env_enc: Mapped[str | None] = mapped_column(Text)  # encrypted overrides
    preview_port_base: Mapped[int | None] = mapped_column(Integer)  # published = base + PR number
    preview_domain: Mapped[str | None] = mapped_column(String(253))
    # a pull request from another repository (a fork) is only built when this is on, and
    # then with previewEnv alone; same-repository previews get the parent's env only if asked
    preview_allow_forks: Mapped[bool] = mapped_column(Boolean, default=False)
    preview_inherit_env: Mapped[bool] = mapped_column(Boolean, default=False)
    # ... and on the preview itself
    parent_id: Mapped[str | None] = mapped_column(
        String(24), ForeignKey("applications.id", ondelete="CASCADE"), index=True
    )
    preview_number: Mapped[int | None] = mapped_column(Integer)
    preview_ref: Mapped[str | None] = mapped_column(String(255))  # the PR's head branch
    preview_closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # then removed
    # images: pushed to a registry (PUSH_IMAGE), rollback points, restore, build cache
    registry_id: Mapped[str | None] = mapped_column(String(24), ForeignKey("registries.id"))
    rollback_active: Mapped[bool] = mapped_column(Boolean, default=True)
    rollback_registry_id: Mapped[str | None] = mapped_column(
        String(24), ForeignKey("registries.id")
    )
    restore_on_failure: Mapped[bool] = mapped_column(Boolean, default=True)
    clean_cache: Mapped[bool] = mapped_column(Boolean, default=False)  # every build uncached
    # clearBuildCache: the next build runs without cache (then this is reset)
    clean_cache_next: Mapped[bool] = mapped_column(Boolean, default=False)
    docker_build_stage: Mapped[str | None] = mapped_column(String(255))  # --target
    build_secrets_enc: Mapped[str | None] = mapped_column(Text)  # encrypted {"ID": "value"}
    build_secret_keys: Mapped[list[str]] = mapped_column(JSON, default=list)
    build_memory_limit: Mapped[int | None] = mapped_column(Integer)  # bytes
    build_cpu_limit: Mapped[float | None] = mapped_column(Float)  # cores
    # after a rollback, push/tag webhooks do not deploy until the next manual deployment
    rollback_pinned_id: Mapped[str | None] = mapped_column(String(24))
    # the runtime monitor (app/monitor): ApplicationHealth, and the time of the engine
    # observation that set it (older observations replayed after a restart are dropped)
    health: Mapped[str] = mapped_column(String(16), default="UNKNOWN")
    health_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
