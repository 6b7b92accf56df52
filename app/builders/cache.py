"""An application's own build cache on the classic builder.

The classic builder's cache *is* images: each step of a build commits an image whose
parent is the previous step's, and a later build reuses a step when an image with the
same parent and instruction exists (" ---> Using cache"). Left to itself the engine looks
among *all* its images and takes the newest match, so applications whose Dockerfiles
begin alike share steps, and a clean build of one makes new images that the others'
next builds then follow off their own chain. Those images carry no label of the build
that made them, so no label or filter finds "an application's cache".

Slipway keeps each application's cache to itself with a ledger in its workspace:

- every build's step results (" ---> <id>" of each step of every stage, except a
  ``FROM``'s base image) are noted; the last builds' ones are the *cache sources* of the
  next build (``cache_from``), and the engine then only reuses a step found in those
  images' history: another application's images are never a hit, and an application's
  first build is uncached;
- the images a build *created* (its results that were not reused) are the application's
  to remove.

``clearBuildCache`` forgets the cache sources (so the next build starts afresh even
before it runs without cache) and :func:`clear_cached_images` removes the created images
nothing else needs: an image still tagged (a deployment's image, a rollback point), the
parent of another image (a later step, another application's image that reused it) or
used by a container is kept; Docker itself refuses to remove those.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from docker.errors import APIError, DockerException, NotFound

from app.filemodes import PRIVATE_FILE
from app.types import LogFn, LogStream

logger = logging.getLogger(__name__)

_STEP = re.compile(r"^Step \d+/\d+ : (\S+)")
_RESULT = re.compile(r"^ ---> ([0-9a-f]{12,64})$")
_CACHED = " ---> Using cache"
CREATED_MAX = 10_000  # created ids kept in one ledger (oldest dropped first)
SOURCE_BUILDS = 3  # the last builds whose step images are the next build's cache sources
SOURCES_MAX = 300  # ids in one cache_from (it travels in the /build query string)
# A cache source that cannot exist: with no source at all the engine would use every image.
NO_SOURCES = "sha256:" + "0" * 64


class BuildSteps:
    """A :class:`LogFn` in front of another one that notes each step's image of a
    classic build: all of them (``steps``) and those it created (``created``)."""

    def __init__(self, log: LogFn) -> None:
        self._log = log
        self.steps: list[str] = []
        self.created: list[str] = []
        self.reused = 0
        self._base = False  # a FROM step: its result is the base image, not ours
        self._cached = False

    def __call__(self, message: str, *, stream: LogStream = LogStream.STDOUT) -> None:
        self._log(message, stream=stream)
        step = _STEP.match(message)
        if step:
            self._base = step.group(1).upper() == "FROM"
            self._cached = False
        elif message == _CACHED:
            self._cached = True
            self.reused += 1
        else:
            result = _RESULT.match(message)
            if result:
                if not self._base:
                    self.steps.append(result.group(1))
                    if not self._cached:
                        self.created.append(result.group(1))
                self._base = self._cached = False


@dataclass
class _Build:
    steps: list[str]
    ok: bool


@dataclass
class _Entries:
    created: list[str] = field(default_factory=list)
    builds: list[_Build] = field(default_factory=list)


class CacheLedger:
    """One application's build images (a private JSON file in its workspace)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def ids(self) -> list[str]:
        """The images the application's builds created."""
        return self._read().created

    def sources(self) -> list[str]:
        """``cache_from`` for the next build: the last builds' step images.

        Successful builds first, newest first, each from its last step back: where the
        engine has to match a step by an image's history (the newest image for the step
        is not in these images' chains), it keeps to the first image that matches for the
        rest of the stage, and a complete build's last image matches every step.
        """
        builds = self._read().builds
        ordered = [b for b in reversed(builds) if b.ok] + [b for b in reversed(builds) if not b.ok]
        found: dict[str, None] = {}
        for build in ordered:
            found |= dict.fromkeys(reversed(build.steps))
        return list(found)[:SOURCES_MAX] or [NO_SOURCES]

    def record(self, steps: BuildSteps, *, ok: bool) -> None:
        """After a build, also a failed one: its steps are still images."""
        if not steps.steps and not steps.created:
            return
        entries = self._read()
        entries.created = [*entries.created, *steps.created]
        if steps.steps:
            entries.builds = [*entries.builds, _Build(steps.steps, ok)][-SOURCE_BUILDS:]
        self._write(entries)

    def forget_sources(self) -> None:
        entries = self._read()
        entries.builds = []
        self._write(entries)

    def write(self, created: list[str]) -> None:
        """Keep only ``created`` of the created images (the sources stay)."""
        entries = self._read()
        entries.created = created
        self._write(entries)

    def _read(self) -> _Entries:
        try:
            data = json.loads(self.path.read_text())
        except (FileNotFoundError, ValueError):
            return _Entries()
        if not isinstance(data, dict):
            return _Entries()
        created = [str(i) for i in data.get("created") or [] if isinstance(i, str)]
        builds = [
            _Build([str(i) for i in b.get("steps") or [] if isinstance(i, str)], bool(b.get("ok")))
            for b in data.get("builds") or []
            if isinstance(b, dict)
        ]
        return _Entries(created, builds)

    def _write(self, entries: _Entries) -> None:
        created = list(dict.fromkeys(entries.created))[-CREATED_MAX:]
        if not created and not entries.builds:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
        with os.fdopen(fd, "w") as out:
            builds = [{"steps": b.steps, "ok": b.ok} for b in entries.builds]
            json.dump({"created": created, "builds": builds}, out)
        os.replace(tmp, self.path)


@dataclass(frozen=True)
class ClearedCache:
    removed: int  # images of the application's builds removed now
    kept: int  # still needed: tagged, a parent of another image, or in use


def clear_cached_images(client: Any, ledger: CacheLedger) -> ClearedCache:
    """Forget the cache sources; remove the created images nothing else needs.

    Children go before their parents (newest first, repeated while that frees more); an
    image is removed by id with ``noprune`` so no untagged parent outside the ledger goes
    with it. The ids of images kept are kept, to be removed once free. Raises
    :class:`DockerException` (or ``OSError``) when the engine fails.
    """
    ledger.forget_sources()
    api: Any = getattr(client, "api", client)
    pending = ledger.ids()
    removed = 0
    progress = True
    while pending and progress:
        progress = False
        for image_id in reversed(list(pending)):
            state = _removable(api, image_id)
            if state is False:
                continue
            if state is True:
                try:
                    api.remove_image(image_id, noprune=True)
                except NotFound:
                    pass
                except APIError as exc:  # a child of it, or a container uses it
                    logger.debug("keeping build image %s: %s", image_id, exc.explanation or exc)
                    continue
                else:
                    removed += 1
            pending.remove(image_id)
            progress = True
    ledger.write(pending)
    return ClearedCache(removed=removed, kept=len(pending))


def _removable(api: Any, image_id: str) -> bool | None:
    """False for a tagged image (a deployment's, a rollback point); None when it is gone."""
    try:
        info = api.inspect_image(image_id)
    except NotFound:
        return None
    except DockerException:
        return False
    return not (info.get("RepoTags") or [])
