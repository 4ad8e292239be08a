"""``downsample``: a source shrunk by integer factors, block-wise, as bioimage-py 0.2 made it.

The input is wrapped in a ``ResizedSource`` of the downscaled shape (``util.downscale_shape``,
rounded up) and that wrapper is copied block by block with ``bioimage_py.copy``: every job type,
mask and block selection of ``copy`` works the same here, and each block resamples only its own
region (the wrapper's reads are seam-free, so the result does not depend on the blocks).
"""
from __future__ import annotations

import numbers
from collections.abc import Iterable, Sequence
from typing import Any

from bioimage_py.copy import copy
from bioimage_py.runner.config import RunnerConfig
from bioimage_py.sources import SourceLike, as_source
from bioimage_py.util import downscale_shape
from bioimage_py.wrapper.resize import ResizedSource

__all__ = ["downsample"]


def downsample(
    input: SourceLike,
    scale_factor: int | Sequence[int],
    output: SourceLike | None = None,
    *,
    order: int = 0,
    anti_aliasing: bool = False,
    block_shape: Sequence[int] | None = None,
    job_type: str = "local",
    job_config: RunnerConfig | dict[str, Any] | None = None,
    num_workers: int = 1,
    mask: SourceLike | None = None,
    block_ids: Iterable[int] | None = None,
    resume_from: str | None = None,
) -> Any:
    """Downsample ``input`` by ``scale_factor`` into ``output``, block by block.

    The defaults (``order=0``, nearest, and no anti-aliasing) keep the input's values, as label
    images need; for intensity images pass ``order=1`` (or higher) and ``anti_aliasing=True``.

    ``output`` is a bare array: downsampling into an array of an OME-Zarr image leaves the
    image's metadata as they are (still valid; a new array is not one of its levels). To write
    a pyramid with its NGFF metadata use ``bioimage_py.write_ome_pyramid``, which runs this
    function level by level (``bioimage-py convert --ome`` on the command line).

    Args:
        input: the 2D or 3D array to downsample (any ``SourceLike``).
        scale_factor: an int (every axis) or one int per axis, each ``>= 1`` (1 keeps the axis).
        output: the array to write, of shape ``util.downscale_shape(input.shape,
            scale_factor)``; ``None``: a new numpy array of the input's dtype
            (``job_type="local"`` only).
        order: the interpolation order, 0 (nearest) to 5.
        anti_aliasing: smooth with a Gaussian before sampling, against aliasing.
        block_shape: the blocks, in the downsampled (output) space; default as ``copy``'s.
        job_type, job_config, num_workers: where the blocks run, as for ``copy``.
        mask: only output voxels where it is nonzero are written; the output's shape.
        block_ids: process only these blocks (output space), e.g. those of a failed run.
        resume_from: the ``tmp_folder`` of a ``RunnerError`` of the same call: finish it,
            running only the blocks not done; exclusive with ``block_ids``.

    Returns:
        The output: ``output`` as given, or the new numpy array.

    Raises:
        ValueError: a ``scale_factor`` of the wrong length or with a factor below 1; the errors
            of ``ResizedSource`` (not 2D or 3D, an order outside 0-5) and of ``copy``.
        TypeError: a ``scale_factor`` that is neither an int nor a sequence of ints.
    """
    source = as_source(input)
    factors = _factors(scale_factor, source.ndim)
    target_shape = downscale_shape(source.shape, factors)
    resized = ResizedSource(source, target_shape, order=order, anti_aliasing=anti_aliasing)
    return copy(
        resized, output, block_shape=block_shape, job_type=job_type, job_config=job_config,
        num_workers=num_workers, mask=mask, block_ids=block_ids, resume_from=resume_from,
        name="downsample",
    )


def _factors(scale_factor: int | Sequence[int], ndim: int) -> tuple[int, ...]:
    """One integer factor >= 1 per axis (integral floats such as ``2.0`` count as ints)."""
    if isinstance(scale_factor, numbers.Integral) and not isinstance(scale_factor, bool):
        factors = (int(scale_factor),) * ndim
    else:
        try:
            entries = list(scale_factor)  # type: ignore[arg-type]
        except TypeError:
            raise TypeError(
                f"scale_factor must be an int or a sequence of ints, got {scale_factor!r}"
            ) from None
        if not all(_is_integral(f) for f in entries):
            raise TypeError(
                f"scale_factor must be an int or a sequence of ints, got {scale_factor!r}"
            )
        factors = tuple(int(f) for f in entries)
        if len(factors) != ndim:
            raise ValueError(
                f"scale_factor {scale_factor} does not match the input dimensionality {ndim}."
            )
    if any(f < 1 for f in factors):
        raise ValueError(
            f"downsample requires scale factors >= 1, got {factors}; "
            "use a ResizedSource directly to upsample."
        )
    return factors


def _is_integral(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return False
    return float(value).is_integer()
