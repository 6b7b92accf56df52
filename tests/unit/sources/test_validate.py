"""Hostile and ordinary inputs for the source validators."""

from __future__ import annotations

import pytest

from app.errors import BadInput
from app.sources.validate import (
    split_credentials,
    validate_env_key,
    validate_ref,
    validate_relative_path,
    validate_repository,
)


@pytest.mark.parametrize(
    "url",
    [
        "https://github.com/owner/repo.git",
        "http://127.0.0.1:8080/repo.git",
        "https://user:secret@gitlab.example.com/group/sub/repo",
        "ssh://git@github.com/owner/repo.git",
        "ssh://git@[::1]:2222/repo.git",
        "git://example.com/repo.git",
        "file:///srv/git/repo.git",
        "git@github.com:owner/repo.git",
        "deploy_user@git.example.com:~/repo",
    ],
)
def test_accepts_ordinary_repository_urls(url: str) -> None:
    assert validate_repository(url) == url


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("", "empty"),
        ("--upload-pack=touch /tmp/pwned", "start with '-'"),
        ("-oProxyCommand=x", "start with '-'"),
        ("ext::sh -c touch% /tmp/pwned", "whitespace"),
        ("ext::sh", "must be an https"),
        ("fd::17", "must be an https"),
        ("https://github.com/owner/repo\n", "whitespace or control"),
        ("https://github.com/own er/repo", "whitespace"),
        ("https://github.com/owner/\x00repo", "control"),
        ("ftp://example.com/repo.git", "scheme must be one of"),
        ("javascript://example.com/repo", "scheme must be one of"),
        ("ssh://-oProxyCommand=touch/repo", "no valid host"),
        ("ssh://-oProxyCommand=x@host/repo", "user must not start with '-'"),
        ("https:///repo.git", "no valid host"),
        ("https://github.com", "no repository path"),
        ("https://github.com/", "no repository path"),
        ("https://host:notaport/repo", "malformed"),
        ("file://otherhost/etc", "file URL must be"),
        ("git@-oProxyCommand=x:repo", "must be an https"),
        ("-@host:repo", "start with '-'"),
        ("/srv/git/repo.git", "must be an https"),
        ("./repo", "must be an https"),
        ("github.com/owner/repo", "must be an https"),
        ("git@host://path", "scheme must be one of"),
    ],
)
def test_rejects_hostile_repository_urls(url: str, fragment: str) -> None:
    with pytest.raises(BadInput, match="repository|file URL") as info:
        validate_repository(url)
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://u:p%40ss@host/r.git", ("https://host/r.git", "u", "p@ss")),
        ("http://u@host:8080/r", ("http://host:8080/r", "u", None)),
        ("https://:tok@host/r", ("https://host/r", None, "tok")),
        ("https://u:a:b@host/r", ("https://host/r", "u", "a:b")),
        ("https://host/r", ("https://host/r", None, None)),
        ("ssh://git@host/r", ("ssh://git@host/r", None, None)),
        ("git@host:r", ("git@host:r", None, None)),
    ],
)
def test_split_credentials(url: str, expected: tuple[str, str | None, str | None]) -> None:
    assert split_credentials(url) == expected


@pytest.mark.parametrize("name", ["main", "feature/x-1", "release-1.2", "v1.0.0", "a@b", "ünï"])
def test_accepts_ordinary_refs(name: str) -> None:
    assert validate_ref(name) == name


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("", "empty"),
        ("--upload-pack=touch /tmp/pwned", "start with '-'"),
        ("-b", "start with '-'"),
        ("a..b", "'..'"),
        ("a b", "spaces"),
        ("a\tb", "control"),
        ("a\nb", "control"),
        ("a\x7fb", "control"),
        ("a~1", "~ ^"),
        ("a^", "~ ^"),
        ("a:b", "~ ^"),
        ("a?", "~ ^"),
        ("a*", "~ ^"),
        ("a[b", "~ ^"),
        ("a\\b", "~ ^"),
        ("a@{1}", "'@{'"),
        ("@", "'@'"),
        ("main.lock", "'.lock'"),
        ("a.lock/b", "'.lock'"),
        ("main/", "'/'"),
        ("/main", "'/'"),
        ("a//b", "'//'"),
        ("main.", "end with '.'"),
        (".hidden", "start with '.'"),
        ("a/.b", "start with '.'"),
    ],
)
def test_rejects_hostile_refs(name: str, fragment: str) -> None:
    with pytest.raises(BadInput, match="branch name") as info:
        validate_ref(name)
    assert fragment in str(info.value)


def test_ref_message_names_what_it_checked() -> None:
    with pytest.raises(BadInput, match="invalid tag name"):
        validate_ref("-x", what="tag")


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("", "."),
        ("/", "."),
        ("//", "."),
        (".", "."),
        ("./", "."),
        ("Dockerfile", "Dockerfile"),
        ("docker/Dockerfile.prod", "docker/Dockerfile.prod"),
        ("./app//web/", "app/web"),
        ("a/./b", "a/b"),
        ("dir with space/x", "dir with space/x"),
        ("a/-b", "a/-b"),
    ],
)
def test_normalises_relative_paths(path: str, expected: str) -> None:
    assert validate_relative_path(path, "build path") == expected


@pytest.mark.parametrize(
    ("path", "fragment"),
    [
        ("/etc/passwd", "absolute"),
        ("../etc/passwd", "'..'"),
        ("a/../../b", "'..'"),
        ("a/..", "'..'"),
        ("..", "'..'"),
        ("-rf", "start with '-'"),
        ("./-rf", "start with '-'"),
        ("a\x00b", "NUL or control"),
        ("a\nb", "NUL or control"),
    ],
)
def test_rejects_hostile_paths(path: str, fragment: str) -> None:
    with pytest.raises(BadInput, match="^build path") as info:
        validate_relative_path(path, "build path")
    assert fragment in str(info.value)


@pytest.mark.parametrize("key", ["A", "_", "PATH", "my_var2", "_X_1"])
def test_accepts_env_keys(key: str) -> None:
    assert validate_env_key(key) == key


@pytest.mark.parametrize("key", ["", "1A", "A-B", "A B", "A=B", "A\n", "-A", "Ä", "A.B", "$A"])
def test_rejects_env_keys(key: str) -> None:
    with pytest.raises(BadInput, match=r"must match \[A-Za-z_\]"):
        validate_env_key(key)
