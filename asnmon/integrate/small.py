"""numpy on 10-100-point arrays without its Python layers: the same operations, the same bits.

On a 20-point trace ``np.flatnonzero``, ``ndarray.mean`` or ``np.trapezoid`` spend
more time in argument handling than in arithmetic, and integrating one injection
makes a few thousand such calls. Each function here makes exactly the ufunc calls
its numpy counterpart makes, in the same order, so every result is bit-identical
(``tests/test_integrate_small.py`` checks that against numpy itself). 1-D float
arrays only; ``mean`` of an empty array raises instead of warning.
"""

from __future__ import annotations

import math
from typing import overload

import numpy as np
from numpy._core.multiarray import count_nonzero as _count_nonzero
from numpy._core.multiarray import interp as _interp  # what np.interp calls for real data

from asnmon.records import FloatArray

__all__ = [
    "amax",
    "amin",
    "count",
    "cumsum0",
    "diff",
    "interp",
    "mean",
    "nonzero",
    "std",
    "total",
    "trapezoid",
]

_add = np.add.reduce
_accumulate = np.add.accumulate
_max = np.maximum.reduce
_min = np.minimum.reduce


def nonzero(mask: np.ndarray) -> np.ndarray:
    """``np.flatnonzero`` of a 1-D array."""
    return mask.nonzero()[0]


def amax(a: np.ndarray) -> float:
    """``float(a.max())``."""
    return float(_max(a))


def amin(a: np.ndarray) -> float:
    """``float(a.min())``."""
    return float(_min(a))


@overload
def interp(x: float, xp: FloatArray, fp: FloatArray) -> np.float64: ...
@overload
def interp(x: FloatArray, xp: FloatArray, fp: FloatArray) -> FloatArray: ...
def interp(x: FloatArray | float, xp: FloatArray, fp: FloatArray) -> FloatArray | np.float64:
    """``np.interp(x, xp, fp)`` for real ``fp``: its compiled function, without the dispatch."""
    return _interp(x, xp, fp, None, None)


def mean(a: FloatArray) -> float:
    """``float(a.mean())`` of a non-empty array: the pairwise sum over the count."""
    return float(_add(a)) / a.size


def total(a: FloatArray) -> float:
    """``float(a.sum())``: the pairwise sum."""
    return float(_add(a))


def std(a: FloatArray) -> float:
    """``float(np.std(a))`` of a non-empty array: squared deviations from the mean, summed."""
    d = a - _add(a) / a.size
    np.square(d, out=d)
    return math.sqrt(float(_add(d) / a.size))


def count(mask: np.ndarray) -> int:
    """``int(np.count_nonzero(mask))``: the compiled count, without its wrapper."""
    return int(_count_nonzero(mask))


def cumsum0(a: FloatArray) -> FloatArray:
    """``np.concatenate(([0.0], a.cumsum()))``: the running sums of a float64 array after a 0."""
    out = np.empty(a.size + 1)
    out[0] = 0.0
    _accumulate(a, out=out[1:])
    return out


def diff(a: FloatArray) -> FloatArray:
    """``np.diff`` of a 1-D array."""
    return a[1:] - a[:-1]


def trapezoid(y: FloatArray, x: FloatArray) -> float:
    """``float(np.trapezoid(y, x))`` for 1-D arrays."""
    return float(_add((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2.0))
