"""Where a container lives: a local path, a zip file holding a zarr, or a URL.

URLs: ``s3://bucket[/key]`` (AWS or any S3-compatible server), ``gs://bucket[/key]`` and
``http(s)://host/path`` (read-only: HTTP takes no writes and cannot list keys). A local file
ending in ``.zip`` is a zipped zarr store, read-only. The Rust core reads and writes all of them
(``_core.open_zarr``, ``_core.store_get``, ...), given the non-secret *storage options*
``endpoint_url``, ``region`` and ``anonymous``, which ``open_source`` and ``create_array`` take as
keyword arguments and record in the spec. Credentials are never arguments: the core takes them
from the environment (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, the AWS config files,
``GOOGLE_APPLICATION_CREDENTIALS``, ...), so they never end up in a spec, a pickle or a repr.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from bioimage_py.errors import ReadOnlyLocationError

__all__ = [
    "READ_ONLY_SCHEMES",
    "STORAGE_OPTIONS",
    "URL_SCHEMES",
    "check_location",
    "check_writable_location",
    "describe_key",
    "is_local",
    "is_read_only_location",
    "is_url",
    "is_zip",
    "join_key",
    "normalize_location",
    "split_storage_options",
    "store_kwargs",
    "url_scheme",
]

URL_SCHEMES = ("s3", "gs", "http", "https")
"""The URL schemes the core opens."""
READ_ONLY_SCHEMES = ("http", "https")
"""URLs that are read only (and cannot be listed)."""
STORAGE_OPTIONS = ("endpoint_url", "region", "anonymous")
"""The keyword arguments that configure access to a URL (never credentials)."""

# Keyword arguments other libraries take for secrets (s3fs, boto3, obstore, gcsfs): refused with
# a message saying where credentials come from instead.
_CREDENTIAL_NAMES = frozenset({
    "access_key", "access_key_id", "aws_access_key_id", "aws_secret_access_key",
    "aws_session_token", "credentials", "key", "password", "secret", "secret_access_key",
    "secret_key", "secrets", "session_token", "token",
})
_CREDENTIALS_HELP = (
    "credentials are never passed as arguments (they would be recorded in specs): they come "
    "from the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, the AWS "
    "config files; GOOGLE_APPLICATION_CREDENTIALS for gs://)"
)


def url_scheme(path: str) -> str | None:
    """The lower-case scheme of a URL (``"s3"``, ``"https"``, ...); ``None`` for a local path."""
    scheme, separator, _ = path.partition("://")
    if not separator or not scheme or any(c in scheme for c in "/\\"):
        return None
    return scheme.lower()


def is_url(path: str) -> bool:
    """Whether ``path`` is a URL (``scheme://...``) rather than a local path."""
    return url_scheme(path) is not None


def is_zip(path: str) -> bool:
    """Whether ``path`` is a local zip file (by its name: ``vol.zarr.zip``)."""
    return not is_url(path) and path.rstrip("/" + os.sep).lower().endswith(".zip")


def is_local(path: str) -> bool:
    """Whether ``path`` is a local folder or file that is not a zip (the file-system code
    paths), rather than a URL or a zip file (read through the core's stores)."""
    return not is_url(path) and not is_zip(path)


def is_read_only_location(path: str) -> bool:
    """Whether nothing can be written at ``path``: an ``http(s)://`` URL or a zip file."""
    return url_scheme(path) in READ_ONLY_SCHEMES or is_zip(path)


def check_location(path: str) -> None:
    """Check a URL's scheme and that it names a bucket (or host); local paths pass.

    Raises:
        ValueError: an unsupported scheme (listing the supported ones), or no bucket or host.
    """
    scheme = url_scheme(path)
    if scheme is None:
        return
    if scheme not in URL_SCHEMES:
        supported = ", ".join(f"{s}://" for s in URL_SCHEMES)
        raise ValueError(
            f"{path!r}: unsupported URL scheme {scheme!r}; supported: {supported}, or a local "
            "path"
        )
    bucket = path.split("://", 1)[1].split("/", 1)[0]
    if not bucket:
        what = "host" if scheme in READ_ONLY_SCHEMES else "bucket"
        raise ValueError(f"{path!r} names no {what}: expected {scheme}://{what}/key")
    if scheme in READ_ONLY_SCHEMES and _url_path(path).lower().endswith(".zip"):
        raise ValueError(
            f"{path!r}: zipped zarrs are read from local files only; download it and open the "
            "local .zip"
        )


def _url_path(url: str) -> str:
    """A URL without its query and fragment (which never name keys)."""
    return url.split("?", 1)[0].split("#", 1)[0]


def normalize_location(path: str) -> str:
    """A URL without trailing slashes (``s3://b/vol.zarr/`` -> ``s3://b/vol.zarr``), so that
    keys join to it and specs of one container are equal; local paths are returned as given."""
    if not is_url(path):
        return path
    stripped = path.rstrip("/")
    return stripped if not stripped.endswith(":") else path


def check_writable_location(
    path: str, what: str = "write to", *, mode: str | None = None
) -> None:
    """Raise ``ReadOnlyLocationError`` naming ``path`` when it is an HTTP(S) URL or a zip file.

    Args:
        path: the container.
        what: the attempted operation, for the message (``"create an array in"``, ...).
        mode: the write mode it was opened with, if that is the operation.
    """
    if not is_read_only_location(path):
        return
    attempt = f"open {path!r} with mode {mode!r}" if mode is not None else f"{what} {path!r}"
    if is_zip(path):
        raise ReadOnlyLocationError(
            f"cannot {attempt}: zip files are read-only (open them with mode='r'; write to a "
            ".zarr folder and zip it when done)"
        )
    raise ReadOnlyLocationError(
        f"cannot {attempt}: HTTP(S) URLs are read-only (open them with mode='r'; write to "
        "s3://, gs:// or a local path)"
    )


def split_storage_options(
    path: str, kwargs: Mapping[str, Any]
) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """The storage options among the keyword arguments ``kwargs``, checked, and the others.

    Options set to ``None`` count as not given.

    Returns:
        ``(storage_options, rest)``: a dict of the options given (``None`` when none is) for
        the core's ``storage_options``, and the remaining keyword arguments.

    Raises:
        TypeError: a credential given as an argument (``aws_secret_access_key``, ``secret``,
            ``token``, ...); ``anonymous`` not a bool, ``endpoint_url`` or ``region`` not a str.
        ValueError: options given for a local path or a zip file, an ``endpoint_url`` that is
            not an ``http://`` or ``https://`` URL, an empty ``region``, ``endpoint_url`` or
            ``region`` for an ``http(s)://`` URL.
    """
    credentials = sorted(name for name in kwargs if name.lower() in _CREDENTIAL_NAMES)
    if credentials:
        raise TypeError(f"unexpected argument {', '.join(credentials)} for {path!r}: "
                        f"{_CREDENTIALS_HELP}")
    rest = {name: value for name, value in kwargs.items() if name not in STORAGE_OPTIONS}
    given = {
        name: kwargs[name] for name in STORAGE_OPTIONS if kwargs.get(name) is not None
    }
    if not given:
        return None, rest
    names = ", ".join(given)
    scheme = url_scheme(path)
    if scheme is None:
        raise ValueError(
            f"{names} apply to URLs (s3://, gs://, http(s)://), but {path!r} is a local "
            f"{'zip file' if is_zip(path) else 'path'}; drop {names} or pass a URL"
        )
    endpoint, region, anonymous = (given.get(name) for name in STORAGE_OPTIONS)
    if endpoint is not None:
        if not isinstance(endpoint, str):
            raise TypeError(f"endpoint_url must be a str, got {endpoint!r}")
        if url_scheme(endpoint) not in READ_ONLY_SCHEMES or not endpoint.split("://", 1)[1]:
            raise ValueError(
                f"endpoint_url must be an http:// or https:// URL (e.g. 'http://localhost:9000'"
                f"), got {endpoint!r}"
            )
    if region is not None:
        if not isinstance(region, str):
            raise TypeError(f"region must be a str, got {region!r}")
        if not region.strip():
            raise ValueError("region must not be empty")
    if anonymous is not None and not isinstance(anonymous, bool):
        raise TypeError(f"anonymous must be True or False, got {anonymous!r}")
    if scheme in READ_ONLY_SCHEMES and (endpoint is not None or region is not None):
        raise ValueError(
            f"endpoint_url and region apply to s3:// and gs:// URLs; {path!r} is its own "
            "endpoint"
        )
    return given, rest


def store_kwargs(storage_options: Mapping[str, Any] | None) -> dict[str, Any]:
    """The keyword arguments passing ``storage_options`` to a core function: none when there
    are none (local paths), so local calls stay what they were."""
    return {"storage_options": dict(storage_options)} if storage_options else {}


def join_key(prefix: str, key: str) -> str:
    """Two keys of a store joined with ``/`` (empty parts and outer slashes dropped)."""
    parts = [part for part in f"{prefix}/{key}".split("/") if part]
    return "/".join(parts)


def describe_key(root: str, key: str) -> str:
    """Where ``key`` of the store at ``root`` is, for messages: ``s3://b/vol.zarr/a/zarr.json``,
    ``vol.zarr.zip/a/zarr.json``, or the local file path."""
    key = key.strip("/")
    if not key:
        return root
    if is_local(root):
        return os.path.join(root, *key.split("/"))
    return f"{root.rstrip('/')}/{key}"
