"""Looking for a value everywhere an image keeps anything: ``docker save``'s every file
(manifest, config, each layer tar and every file inside it), ``docker history`` and the
image's inspect data."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import Any


def places_holding(docker_client: Any, image: str, value: str, workdir: Path) -> list[str]:
    """Where ``value`` occurs in ``image``: empty when nowhere. Also checks there are layers."""
    needle = value.encode()
    found: list[str] = []
    saved = workdir / "image.tar"
    with saved.open("wb") as out:
        for chunk in docker_client.images.get(image).save(named=True):
            out.write(chunk)
    layers = 0
    with tarfile.open(saved) as outer:
        for member in outer.getmembers():
            if not member.isfile():
                continue
            data = outer.extractfile(member)
            assert data is not None
            content = data.read()
            if needle in content or value in member.name:
                found.append(f"saved file {member.name}")
            if member.name.endswith("layer.tar"):
                layers += 1
                found += _in_layer(member.name, content, needle)
    assert layers > 0, "docker save gave no layer to look into"
    image_obj = docker_client.images.get(image)
    if value in json.dumps(image_obj.history()):
        found.append("docker history")
    if value in json.dumps(image_obj.attrs):
        found.append("image inspect (config)")
    return found


def _in_layer(name: str, content: bytes, needle: bytes) -> list[str]:
    found = []
    with tarfile.open(fileobj=io.BytesIO(content)) as layer:
        for entry in layer.getmembers():
            if needle.decode() in entry.name or needle.decode() in (entry.linkname or ""):
                found.append(f"{name}: name {entry.name}")
            if entry.isfile():
                data = layer.extractfile(entry)
                if data is not None and needle in data.read():
                    found.append(f"{name}: {entry.name}")
    return found
