"""Reading the JSON metadata files of zarr and N5 containers robustly, in Python.

The array metadata themselves are parsed by the Rust core; Python reads a few members (a zarr
v3 ``node_type``, an N5 ``dimensions`` key, the codecs ``bioimage-py info`` prints). Those files
come from other tools and may be damaged or hostile, so ``read_json_object`` turns every way they
can be wrong into one ``ValueError`` naming the file: bytes that are not UTF-8, text that is not
JSON or not a JSON object, a file too large to be metadata, nesting deeper than Python's JSON
parser can follow (it raises ``RecursionError`` near 1,000 levels). Asked for some members only,
it parses just those, so user attributes nested 100,000 levels deep do not stop an array from
being found (and opened: the Rust side parses only what it needs too). In zip files and at URLs
the same bytes come from ``_core.store_get`` (``read_json_in_store``, ``node_kind_at``), and the
errors name the URL.
"""
from __future__ import annotations

import json
import os
import re
from collections.abc import Collection, Mapping
from typing import Any

from bioimage_py import _core
from bioimage_py.io.location import describe_key, is_local, store_kwargs

__all__ = [
    "MAX_METADATA_BYTES",
    "key_exists",
    "node_kind",
    "node_kind_at",
    "parse_json_object",
    "read_json_in_store",
    "read_json_object",
]

MAX_METADATA_BYTES = 64 * 1024 * 1024
"""Metadata files larger than this are refused (``ValueError``) rather than read into memory."""

# The tokens that matter when skipping over a JSON value without parsing it: strings (which may
# hold brackets) and brackets.
_SKIP_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)
_WHITESPACE = re.compile(r"[ \t\n\r]*")
_SCALAR = re.compile(r"[^,}\]\s]*")


def read_json_object(
    path: str | os.PathLike[str], members: Collection[str] | None = None
) -> dict[str, Any] | None:
    """The JSON object in the file at ``path``; ``None`` when the file does not exist.

    Args:
        path: The metadata file (``zarr.json``, ``.zarray``, ``attributes.json``, ...).
        members: Parse only these top-level members (the others are skipped, however deeply
            nested); ``None`` parses the whole object.

    Raises:
        ValueError: The file is a folder, too large, not UTF-8, not valid JSON, not a JSON
            object, or a member asked for is nested too deeply to parse; naming the file.
        OSError: The file exists but cannot be read.
    """
    name = os.fspath(path)
    try:
        with open(name, "rb") as file:
            data = file.read(MAX_METADATA_BYTES + 1)
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise ValueError(f"{name!r} is a folder, not a metadata file") from None
    return parse_json_object(data, name, members)


def parse_json_object(
    data: bytes, name: str, members: Collection[str] | None = None
) -> dict[str, Any]:
    """The JSON object in the metadata bytes ``data`` read from ``name`` (a file or a URL,
    for messages); ``members`` as for ``read_json_object``.

    Raises:
        ValueError: too large, not UTF-8, not valid JSON, not a JSON object, or a member asked
            for is nested too deeply to parse; naming ``name``.
    """
    if len(data) > MAX_METADATA_BYTES:
        raise ValueError(
            f"{name!r} is larger than {MAX_METADATA_BYTES} bytes: too large for a metadata file"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(
            f"{name!r} is not UTF-8 text (byte {data[err.start]:#04x} at offset {err.start}); "
            "JSON metadata must be UTF-8"
        ) from None
    try:
        value = json.loads(text)
    except RecursionError:
        return _parse_members(name, text, members)
    except ValueError as err:
        raise ValueError(f"{name!r} is not valid JSON: {err}") from None
    if not isinstance(value, dict):
        raise ValueError(f"{name!r} does not hold a JSON object: {text[:80]!r}")
    if members is not None:
        value = {key: item for key, item in value.items() if key in members}
    return value


def read_json_in_store(
    root: str,
    key: str,
    members: Collection[str] | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> dict[str, Any] | None:
    """The JSON object stored at ``key`` (e.g. ``"a/zarr.json"``) of the store at ``root``; ``None``
    when there is no such key.

    ``root`` is a local folder (read as files), a zip file or a URL (read through
    ``_core.store_get`` with ``storage_options``); ``members`` as for ``read_json_object``.

    Raises:
        ValueError: as ``read_json_object``, naming the file or URL.
        OSError: the store cannot be read (``PermissionError`` denied, ``ConnectionError``
            unreachable, ``FileNotFoundError`` no such bucket), naming the URL.
    """
    if is_local(root):
        return read_json_object(describe_key(root, key), members)
    data = _core.store_get(root, key.strip("/"), **store_kwargs(storage_options))
    if data is None:
        return None
    return parse_json_object(bytes(data), describe_key(root, key), members)


def key_exists(root: str, key: str, storage_options: Mapping[str, Any] | None = None) -> bool:
    """Whether the store at ``root`` holds the key ``key`` (a file, for a local folder)."""
    if is_local(root):
        return os.path.isfile(describe_key(root, key))
    return _core.store_get(root, key.strip("/"), **store_kwargs(storage_options)) is not None


def _parse_members(name: str, text: str, members: Collection[str] | None) -> dict[str, Any]:
    """The top-level members of a JSON object too deeply nested for ``json.loads``: each member
    asked for is parsed on its own, the others are skipped over without recursion."""
    too_deep = ValueError(
        f"{name!r} holds JSON nested too deeply to parse (more levels than Python's recursion "
        "limit allows)"
    )
    decoder = json.JSONDecoder()
    pos = _WHITESPACE.match(text).end()
    if not text.startswith("{", pos):
        raise too_deep  # a deeply nested array (or anything else) is not a metadata object
    result: dict[str, Any] = {}
    pos = _WHITESPACE.match(text, pos + 1).end()
    if text.startswith("}", pos):
        return result
    while True:
        try:
            key, pos = json.decoder.scanstring(text, pos + 1) if text.startswith('"', pos) \
                else (None, pos)
        except ValueError as err:
            raise ValueError(f"{name!r} is not valid JSON: {err}") from None
        pos = _WHITESPACE.match(text, pos).end()
        if key is None or not text.startswith(":", pos):
            raise ValueError(f"{name!r} is not valid JSON: expected a member name at char {pos}")
        start = _WHITESPACE.match(text, pos + 1).end()
        end = _skip_value(name, text, start)
        if members is None or key in members:
            try:
                result[key], _ = decoder.raw_decode(text[start:end])
            except RecursionError:
                raise too_deep from None
            except ValueError as err:
                raise ValueError(f"{name!r} is not valid JSON: {err}") from None
        pos = _WHITESPACE.match(text, end).end()
        if text.startswith(",", pos):
            pos = _WHITESPACE.match(text, pos + 1).end()
            continue
        if text.startswith("}", pos):
            return result
        raise ValueError(f"{name!r} is not valid JSON: expected ',' or '}}' at char {pos}")


def _skip_value(name: str, text: str, start: int) -> int:
    """The end of the JSON value starting at ``start``, found by matching brackets (strings
    skipped as tokens) without recursion; scalars end at the next ``,``, ``}`` or ``]``."""
    if start >= len(text):
        raise ValueError(f"{name!r} is not valid JSON: a value is missing at the end")
    first = text[start]
    if first == '"':
        match = _SKIP_TOKENS.match(text, start)
        if match is None:
            raise ValueError(f"{name!r} is not valid JSON: unterminated string at char {start}")
        return match.end()
    if first not in "[{":  # a number, true, false or null
        return _SCALAR.match(text, start).end()
    depth = 0
    for token in _SKIP_TOKENS.finditer(text, start):
        bracket = token.group()
        if bracket in "[{":
            depth += 1
        elif bracket in "]}":
            depth -= 1
            if depth == 0:
                return token.end()
    raise ValueError(f"{name!r} is not valid JSON: unbalanced brackets from char {start}")


def node_kind(folder: str | os.PathLike[str], format: str) -> str | None:
    """``"array"``, ``"group"`` or ``None`` (no metadata) for a folder of a zarr store
    (``format="zarr"``) or an N5 container (``"n5"``), from its metadata files.

    As the Rust core decides: zarr's ``zarr.json`` (v3) takes precedence over ``.zarray`` /
    ``.zgroup`` (v2); an N5 folder is a dataset when its ``attributes.json`` has ``dimensions``.
    Only the members needed are parsed, so deeply nested user attributes do not matter.

    Raises:
        ValueError: A metadata file that is not UTF-8 JSON, not an object, or (zarr v3) has a
            ``node_type`` other than ``"array"`` or ``"group"``; naming the file.
    """
    folder = os.fspath(folder)
    if format == "zarr":
        path = os.path.join(folder, "zarr.json")
        metadata = read_json_object(path, members=("node_type",))
        if metadata is not None:
            kind = metadata.get("node_type")
            if kind not in ("array", "group"):
                raise ValueError(
                    f"{path!r} has node_type {kind!r}; a zarr v3 node is 'array' or 'group'"
                )
            return kind
        if os.path.isfile(os.path.join(folder, ".zarray")):
            return "array"
        return "group" if os.path.isfile(os.path.join(folder, ".zgroup")) else None
    attributes = read_json_object(os.path.join(folder, "attributes.json"), members=("dimensions",))
    if attributes is None:
        return None
    return "array" if "dimensions" in attributes else "group"


def node_kind_at(
    root: str, key: str, format: str, storage_options: Mapping[str, Any] | None = None
) -> str | None:
    """``node_kind`` of the node at ``key`` of the zarr store or N5 container at ``root``: a
    local folder, a zip file or a URL (read through ``_core.store_get``).

    Raises:
        ValueError: damaged metadata (see ``node_kind``), naming the file or URL.
        OSError: the store cannot be read, naming the URL.
    """
    if is_local(root):
        return node_kind(describe_key(root, key), format)
    key = key.strip("/")
    prefix = f"{key}/" if key else ""
    if format == "zarr":
        name = f"{prefix}zarr.json"
        metadata = read_json_in_store(root, name, ("node_type",), storage_options)
        if metadata is not None:
            kind = metadata.get("node_type")
            if kind not in ("array", "group"):
                raise ValueError(
                    f"{describe_key(root, name)!r} has node_type {kind!r}; a zarr v3 node is "
                    "'array' or 'group'"
                )
            return kind
        if key_exists(root, f"{prefix}.zarray", storage_options):
            return "array"
        return "group" if key_exists(root, f"{prefix}.zgroup", storage_options) else None
    attributes = read_json_in_store(
        root, f"{prefix}attributes.json", ("dimensions",), storage_options
    )
    if attributes is None:
        return None
    return "array" if "dimensions" in attributes else "group"
