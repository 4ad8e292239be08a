"""KNOSSOS datasets: read-only and lazy, cube by cube, through ``imageio``.

A dataset is a folder with one subfolder per magnification, ``mag1``, ``mag2``, ... Each holds
cubes of 128^3 voxels at ``x%04d/y%04d/z%04d/<name>_mag<N>_x%04d_y%04d_z%04d.png`` (or ``.jpg``),
the indices being cube coordinates in x, y, z. A cube image is one 2D image of ``128*128`` rows
and 128 columns: its 128 z-slices of ``128 x 128`` (y, x) stacked vertically, so it reshapes to
``(z, y, x)`` in C order (as elf and knossos_utils read them).

``KnossosFile(path)`` is the container the ``"folder"`` format returns for such a folder; its keys
are the magnification folders, the default ``internal_path`` is ``"mag1"``. ``file["magN"]`` is a
``KnossosArray``; a region read decodes only the cubes it touches, and missing cubes read as 0.

Axis order: ``(z, y, x)`` (numpy C order; the folder names are x, y, z). The shape is the
``boundary`` of ``knossos.conf`` (in the mag folder or the dataset folder; given at mag 1 and
divided, rounding up, by the magnification) if present, else the extent of the cube grid on disk.
``chunks`` is ``(128, 128, 128)``.
"""
from __future__ import annotations

import math
import os
import re
from typing import Any

import numpy as np

from bioimage_py.io.optional import import_optional
from bioimage_py.io.reader_array import ReaderArray

__all__ = ["CUBE_EDGE", "KnossosArray", "KnossosFile", "is_knossos_dataset"]

CUBE_EDGE = 128
# Folder and file indices are ASCII digits (``%04d``), at most 9 of them: other names are not
# cubes, and no index can make a shape that overflows.
_MAG_RE = re.compile(r"^mag([0-9]{1,9})$")
_INDEX_RE = re.compile(r"[0-9]{1,9}")
_CUBE_FILE_RE = re.compile(
    r"_mag[0-9]+_x([0-9]{1,9})_y([0-9]{1,9})_z([0-9]{1,9})\.(png|jpe?g)$", re.IGNORECASE
)
_BOUNDARY_RE = re.compile(r"^[ \t]*boundary[ \t]+([xyz])[ \t]+([^\s;]*)[ \t]*;", re.MULTILINE)
_MAX_BOUNDARY = 2**48
"""A boundary beyond this (in voxels) is refused: no real dataset is that large."""


def _imageio() -> Any:
    return import_optional("imageio.v3", format="KNOSSOS", install="pip install imageio")


def _subdirs(path: str, prefix: str) -> dict[int, str]:
    """``{index: name}`` of the subfolders named ``<prefix><digits>`` of ``path``."""
    found = {}
    try:
        entries = list(os.scandir(path))
    except (FileNotFoundError, NotADirectoryError):
        return found
    for entry in entries:
        name = entry.name
        index = name[len(prefix):]
        if name.startswith(prefix) and _INDEX_RE.fullmatch(index) and _is_dir(entry):
            found[int(index)] = name
    return found


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:  # e.g. a symlink loop
        return False


def _mag_folders(path: str) -> dict[str, int]:
    """``{"magN": N}`` for the magnification folders of ``path`` that hold cube folders."""
    mags = {}
    try:
        entries = list(os.scandir(path))
    except (FileNotFoundError, NotADirectoryError):
        return mags
    for entry in entries:
        match = _MAG_RE.match(entry.name)
        if match and _is_dir(entry) and _subdirs(entry.path, "x"):
            mags[entry.name] = int(match.group(1))
    return mags


def is_knossos_dataset(path: str) -> bool:
    """Whether ``path`` is a folder with ``magN`` subfolders holding ``x%04d`` cube folders."""
    return os.path.isdir(path) and bool(_mag_folders(path))


def _read_boundary(*confs: str) -> tuple[int, int, int] | None:
    """The ``(x, y, z)`` boundary of the first ``knossos.conf`` of ``confs`` that has one.

    Raises:
        ValueError: A boundary that is not a positive integer up to ``2**48`` (naming the file).
    """
    for conf in confs:
        try:
            with open(conf, encoding="utf-8", errors="replace") as f:
                text = f.read(1 << 20)  # a configuration file of a few lines
        except OSError:
            continue
        values = {}
        for axis, value in _BOUNDARY_RE.findall(text):
            if not (value.isascii() and value.isdigit() and len(value) <= 15
                    and 0 < int(value) <= _MAX_BOUNDARY):
                raise ValueError(
                    f"{conf!r}: boundary {axis} {value[:40]!r} is not a positive integer of "
                    f"at most 2**48 voxels"
                )
            values[axis] = int(value)
        if all(axis in values for axis in "xyz"):
            return values["x"], values["y"], values["z"]
    return None


def _cube_dtype(cube_file: str) -> np.dtype:
    """The dtype of a cube image, from its header.

    Raises:
        ValueError: The file is not a readable image (naming it).
    """
    try:
        return np.dtype(_imageio().improps(cube_file).dtype)
    except (MemoryError, ImportError):
        raise
    except Exception as err:  # imageio's errors for damaged files differ per format
        raise ValueError(
            f"KNOSSOS cube {cube_file!r} is not a readable image ({type(err).__name__}: {err})"
        ) from None


class KnossosArray(ReaderArray):
    """One magnification of a KNOSSOS dataset as a read-only ``(z, y, x)`` array.

    Args:
        path: The magnification folder (``.../mag1``).
        mag: The magnification factor (1 for ``mag1``), to scale a ``knossos.conf`` boundary.
        dataset_path: The dataset folder (where ``knossos.conf`` may be).
    """

    def __init__(self, path: str, mag: int = 1, dataset_path: str | None = None) -> None:
        self._path = path
        self._mag = mag
        # The cube grid: every (x, y, z) cube folder; ZYX extent from the largest indices.
        self._cube_dirs: dict[tuple[int, int, int], str] = {}
        for xi, xname in _subdirs(path, "x").items():
            xpath = os.path.join(path, xname)
            for yi, yname in _subdirs(xpath, "y").items():
                ypath = os.path.join(xpath, yname)
                for zi, zname in _subdirs(ypath, "z").items():
                    self._cube_dirs[(xi, yi, zi)] = os.path.join(ypath, zname)
        boundary = _read_boundary(
            os.path.join(path, "knossos.conf"),
            *([os.path.join(dataset_path, "knossos.conf")] if dataset_path else []),
        )
        if boundary is not None:
            self._shape = tuple(math.ceil(b / mag) for b in reversed(boundary))
        elif self._cube_dirs:
            grid_xyz = [max(c[i] for c in self._cube_dirs) + 1 for i in range(3)]
            self._shape = tuple(g * CUBE_EDGE for g in reversed(grid_xyz))
        else:
            raise ValueError(f"{path!r} holds no KNOSSOS cubes (x%04d/y%04d/z%04d folders)")
        self._dtype = np.dtype("uint8")
        for coords in sorted(self._cube_dirs):
            cube_file = self._cube_file(coords)
            if cube_file is not None:
                self._dtype = _cube_dtype(cube_file)
                break

    @property
    def path(self) -> str:
        return self._path

    chunks = (CUBE_EDGE,) * 3

    def _cube_file(self, coords: tuple[int, int, int]) -> str | None:
        """The image file of the cube at ``(x, y, z)`` cube coordinates, or ``None`` if missing."""
        folder = self._cube_dirs.get(coords)
        if folder is None:
            return None
        try:
            names = sorted(os.listdir(folder))
        except OSError:
            return None
        for name in names:
            match = _CUBE_FILE_RE.search(name)
            if match and tuple(int(g) for g in match.groups()[:3]) == coords:
                return os.path.join(folder, name)
        return None

    def read_cube(self, coords: tuple[int, int, int]) -> np.ndarray | None:
        """The ``(z, y, x)`` data of the cube at ``(x, y, z)`` cube coordinates, ``None`` if missing.

        Raises:
            ValueError: The cube image is not ``128*128 x 128`` (naming the file).
        """
        cube_file = self._cube_file(coords)
        if cube_file is None:
            return None
        try:
            data = np.asarray(_imageio().imread(cube_file))
        except (MemoryError, ImportError):
            raise
        except Exception as err:  # imageio's errors for damaged files differ per format
            raise OSError(
                f"could not read the KNOSSOS cube {cube_file!r} ({type(err).__name__}: {err}); "
                "the file may be truncated or corrupt"
            ) from err
        if data.size != CUBE_EDGE**3:
            raise ValueError(
                f"KNOSSOS cube {cube_file!r} has shape {data.shape}; expected an image of "
                f"{CUBE_EDGE * CUBE_EDGE} x {CUBE_EDGE} (128 z-slices stacked vertically)"
            )
        return data.reshape((CUBE_EDGE,) * 3)

    def _read(self, roi: tuple[slice, ...]) -> np.ndarray:
        out = np.zeros(tuple(s.stop - s.start for s in roi), dtype=self._dtype)
        if out.size == 0:
            return out
        ranges = [range(s.start // CUBE_EDGE, (s.stop - 1) // CUBE_EDGE + 1) for s in roi]
        for cz in ranges[0]:
            for cy in ranges[1]:
                for cx in ranges[2]:
                    cube = self.read_cube((cx, cy, cz))
                    if cube is None:
                        continue  # missing cubes read as 0
                    src, dst = [], []
                    for c, s in zip((cz, cy, cx), roi):
                        lo = max(s.start, c * CUBE_EDGE)
                        hi = min(s.stop, (c + 1) * CUBE_EDGE)
                        src.append(slice(lo - c * CUBE_EDGE, hi - c * CUBE_EDGE))
                        dst.append(slice(lo - s.start, hi - s.start))
                    out[tuple(dst)] = cube[tuple(src)]
        return out

    def __repr__(self) -> str:
        return f"KnossosArray({self._path!r}, shape={self._shape}, dtype={self._dtype})"


class KnossosFile:
    """A KNOSSOS dataset folder; ``file["magN"]`` is the ``KnossosArray`` of that magnification.

    ``list_arrays()`` gives the default array, ``["mag1"]``, when the dataset has it (so that
    ``open_source`` picks it without ``internal_path``), else every magnification; ``keys()``
    lists every magnification. An unknown key raises ``ValueError`` listing them.
    """

    def __init__(self, path: str) -> None:
        mags = _mag_folders(path)
        if not mags:
            raise ValueError(f"{path!r} is not a KNOSSOS dataset: no magN folders with cubes")
        self._path = path
        self._mags = dict(sorted(mags.items(), key=lambda item: item[1]))

    @property
    def path(self) -> str:
        return self._path

    def keys(self) -> list[str]:
        return list(self._mags)

    def list_arrays(self) -> list[str]:
        return ["mag1"] if "mag1" in self._mags else self.keys()

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.strip("/") in self._mags

    def __getitem__(self, key: str) -> KnossosArray:
        name = key.strip("/") if isinstance(key, str) else key
        if name not in self._mags:
            found = ", ".join(repr(k) for k in self._mags)
            raise ValueError(
                f"internal_path {key!r} is not a magnification of the KNOSSOS dataset "
                f"{self._path!r}; arrays found: {found}"
            )
        return KnossosArray(os.path.join(self._path, name), self._mags[name], self._path)

    def close(self) -> None:
        pass

    def __enter__(self) -> KnossosFile:
        return self

    def __exit__(self, *exc: Any) -> None:
        pass

    def __repr__(self) -> str:
        return f"KnossosFile({self._path!r}, mags={self.keys()})"
