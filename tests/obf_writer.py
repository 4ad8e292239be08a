"""A minimal writer of OBF files (Imspector's ``.msr``), for tests: ``msr-reader`` only reads.

The layout follows the format as ``msr_reader.obffile`` parses it (Imspector's OBF description):
a file header (magic ``OMAS_BF\\n\\xff\\xff``, format version, position of the first stack, a
description and, from version 2 on, a tag dictionary of file metadata), then a linked list of
stacks. A stack is a header (magic ``OMAS_BF_STACK\\n\\xff\\xff``, version, rank, 15 sizes with x
first, 15 lengths and offsets, data type flags, compression, name, description, data length and
the position of the next stack), its data (C order with x fastest, zlib-compressed or raw), and a
footer (version 1-6 fields), followed by one label per dimension, the footer metadata and a tag
dictionary.
"""
from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

MAX_DIMS = 15
FILE_MAGIC = b"OMAS_BF\n\xff\xff"
STACK_MAGIC = b"OMAS_BF_STACK\n\xff\xff"
STACK_VERSION = 6

# Imspector's data type flags, as msr_reader maps them.
DTYPE_FLAGS = {
    np.dtype("uint8"): 1, np.dtype("int8"): 2, np.dtype("uint16"): 4, np.dtype("int16"): 8,
    np.dtype("uint32"): 16, np.dtype("int32"): 32, np.dtype("float32"): 64,
    np.dtype("float64"): 128, np.dtype("uint64"): 0x1000, np.dtype("int64"): 0x2000,
    np.dtype("bool"): 0x10000,
}


@dataclass
class Stack:
    """One stack: ``data`` in numpy order (slowest axis first, x last)."""

    name: str
    data: np.ndarray
    compressed: bool = False
    description: str = ""
    labels: Sequence[str] | None = None  # per dimension, x first; default "ExpControl X", ...
    tags: dict[str, str] = field(default_factory=dict)


def _tag_dict(tags: dict[str, str]) -> bytes:
    out = b""
    for key, value in tags.items():
        k, v = key.encode(), value.encode()
        out += struct.pack("<L", len(k)) + k + struct.pack("<L", len(v)) + v
    return out + struct.pack("<L", 0)


def _padded(values: Sequence[float], fmt: str) -> bytes:
    values = list(values) + [0] * (MAX_DIMS - len(values))
    return struct.pack(f"<{MAX_DIMS}{fmt}", *values)


def _si_unit() -> bytes:
    return struct.pack("<18ld", *([0, 1] * 9), 1.0)


def _footer(stack: Stack, rank: int) -> bytes:
    metadata = b""
    fixed = struct.pack("<L", 0)  # placeholder for the footer size
    fixed += _padded([0] * rank, "L") + _padded([0] * rank, "L")  # no col positions / labels
    fixed += struct.pack("<L", len(metadata))
    fixed += _si_unit() + _si_unit() * MAX_DIMS  # v2: SI units of the values and dimensions
    fixed += struct.pack("<QQ", 0, 0)  # v3: no flush points
    tags = _tag_dict(stack.tags)
    fixed += struct.pack("<Q", len(tags))  # v4
    fixed += struct.pack("<QLQ", 0, 1, 0)  # v5
    fixed += struct.pack("<QQ", stack.data.size, 0)  # v6: samples written, no chunk positions
    fixed = struct.pack("<L", len(fixed)) + fixed[4:]
    labels = stack.labels or [f"ExpControl {'XYZT'[i] if i < 4 else i}" for i in range(rank)]
    extra = b"".join(struct.pack("<L", len(lb.encode())) + lb.encode() for lb in labels)
    return fixed + extra + metadata + tags


def write_obf(path: str, stacks: Sequence[Stack], *, description: str = "test file",
              file_tags: dict[str, str] | None = None, format_version: int = 2) -> None:
    """Write ``stacks`` to an OBF file at ``path``."""
    descr = description.encode()
    header_len = struct.calcsize("<10sLQL") + len(descr) + (8 if format_version > 1 else 0)
    blobs = []
    for stack in stacks:
        data = np.ascontiguousarray(stack.data)
        flag = DTYPE_FLAGS[data.dtype]
        payload = data.astype(data.dtype.newbyteorder("<"), copy=False).tobytes()
        if stack.compressed:
            payload = zlib.compress(payload)
        rank = data.ndim
        sizes = list(data.shape[::-1])  # x first
        name, sdescr = stack.name.encode(), stack.description.encode()
        head = STACK_MAGIC + struct.pack("<LL", STACK_VERSION, rank)
        head += _padded(sizes, "L") + _padded([float(s) * 1e-8 for s in sizes], "d")
        head += _padded([0.0] * rank, "d")
        blobs.append((head, flag, int(stack.compressed), name, sdescr, payload,
                      _footer(stack, rank)))
    # Stack positions: each stack is its header, name, description, data and footer.
    positions, pos = [], header_len
    for head, _, _, name, sdescr, payload, footer in blobs:
        positions.append(pos)
        pos += len(head) + struct.calcsize("<LLLLLQQQ") + len(name) + len(sdescr)
        pos += len(payload) + len(footer)
    metadata_position = pos
    out = FILE_MAGIC + struct.pack("<LQL", format_version, positions[0] if blobs else 0,
                                   len(descr)) + descr
    if format_version > 1:
        out += struct.pack("<Q", metadata_position)
    for i, (head, flag, compressed, name, sdescr, payload, footer) in enumerate(blobs):
        next_pos = positions[i + 1] if i + 1 < len(blobs) else 0
        out += head + struct.pack("<LLLLLQQQ", flag, compressed, 6 if compressed else 0,
                                  len(name), len(sdescr), 0, len(payload), next_pos)
        out += name + sdescr + payload + footer
    if format_version > 1:
        out += _tag_dict(file_tags or {})
    with open(path, "wb") as f:
        f.write(out)
