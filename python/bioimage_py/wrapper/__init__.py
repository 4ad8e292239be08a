"""Wrappers: read-only sources that transform another source on the fly.

Each wrapper is itself a ``Source`` (numpy basic indexing, ``to_spec``, pickling), computing only
the region read: ``ThresholdSource`` (a comparison mask), ``NormalizeSource`` (min-max to
``[0, 1]``), ``RoiSource`` (a sub-region), ``PadSource`` (``numpy.pad``), ``ExpandDimsSource``
(``numpy.expand_dims``) and ``ResizedSource`` (nearest or linear resampling). Wrappers chain, and
their spec (kind ``"wrapper"``) nests the wrapped source's spec, so a worker rebuilds the whole
chain with ``bioimage_py.sources.from_spec``. Subclass ``WrapperSource`` and decorate the class
with ``register_wrapper`` to add one.
"""
from __future__ import annotations

from bioimage_py.wrapper.base import WrapperSource, register_wrapper, wrapper_from_spec
from bioimage_py.wrapper.expand_dims import ExpandDimsSource
from bioimage_py.wrapper.normalize import NormalizeSource
from bioimage_py.wrapper.pad import PadSource
from bioimage_py.wrapper.resize import ResizedSource
from bioimage_py.wrapper.roi import RoiSource
from bioimage_py.wrapper.threshold import ThresholdSource

__all__ = [
    "ExpandDimsSource",
    "NormalizeSource",
    "PadSource",
    "ResizedSource",
    "RoiSource",
    "ThresholdSource",
    "WrapperSource",
    "register_wrapper",
    "wrapper_from_spec",
]
