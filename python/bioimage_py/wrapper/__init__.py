"""Wrappers: sources that transform other sources on the fly, with bioimage_py 0.2's API.

Each wrapper is itself a ``Source`` (numpy basic indexing, ``to_spec``, pickling) computing only
the region read. ``bioimage_py.wrapper.base`` holds ``WrapperSource`` (subclass it and decorate
the class with ``register_wrapper`` to add one), ``wrapper_from_spec`` and the wrappers around
your own callables (``SimpleTransformationSource``, ``SimpleTransformationWithHaloSource``,
``TransformationSource``, ``MultiTransformationSource``); ``bioimage_py.wrapper.generic`` the
generic ones (``ThresholdSource``, ``NormalizeSource``, ``RoiSource``, ``PadSource``,
``ExpandDimsSource``); ``bioimage_py.wrapper.resize`` ``ResizedSource`` and
``bioimage_py.wrapper.affine`` ``AffineSource`` (resampling to another grid). Wrappers chain, and
their spec (kind ``"wrapper"``) nests the wrapped sources' specs, so a worker rebuilds the whole
chain with ``bioimage_py.sources.from_spec``.
"""
from __future__ import annotations

from bioimage_py.wrapper.affine import AffineSource
from bioimage_py.wrapper.base import (
    MultiTransformationSource,
    SimpleTransformationSource,
    SimpleTransformationWithHaloSource,
    TransformationSource,
    WrapperSource,
    register_wrapper,
    wrapper_from_spec,
)
from bioimage_py.wrapper.generic import (
    ExpandDimsSource,
    NormalizeSource,
    PadSource,
    RoiSource,
    ThresholdSource,
)
from bioimage_py.wrapper.resize import ResizedSource

__all__ = [
    "AffineSource",
    "ExpandDimsSource",
    "MultiTransformationSource",
    "NormalizeSource",
    "PadSource",
    "ResizedSource",
    "RoiSource",
    "SimpleTransformationSource",
    "SimpleTransformationWithHaloSource",
    "ThresholdSource",
    "TransformationSource",
    "WrapperSource",
    "register_wrapper",
    "wrapper_from_spec",
]
