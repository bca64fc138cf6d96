"""Counter-based random numbers: a value is a pure function of (seed, stream, keys).

The simulator never keeps state: any reading, of any meter, at any slot, is computed on demand
from its coordinates. splitmix64 finalisers give well-mixed 64-bit values, vectorised in numpy.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

U64 = npt.NDArray[np.uint64]
F64 = npt.NDArray[np.float64]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_KEY2 = np.uint64(0xD6E8FEB86659FD93)
_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)
_TO_UNIT = 2.0**-53


def _mix(x: U64) -> U64:
    x = (x ^ (x >> _S30)) * _MIX1
    x = (x ^ (x >> _S27)) * _MIX2
    return x ^ (x >> _S31)


def hash64(seed: int, stream: int, a: npt.ArrayLike, b: npt.ArrayLike = 0) -> U64:
    """A 64-bit hash of (seed, stream, a, b); ``a`` and ``b`` broadcast as numpy arrays."""
    key = _mix(np.asarray([(seed * 1_000_003 + stream) & 0xFFFFFFFFFFFFFFFF], dtype=np.uint64))
    first = _mix(key ^ (np.asarray(a, dtype=np.int64).astype(np.uint64) * _GOLDEN))
    return _mix(first ^ (np.asarray(b, dtype=np.int64).astype(np.uint64) * _KEY2))


def uniform(seed: int, stream: int, a: npt.ArrayLike, b: npt.ArrayLike = 0) -> F64:
    """Uniform floats in [0, 1) keyed by (seed, stream, a, b)."""
    return np.asarray((hash64(seed, stream, a, b) >> _S11).astype(np.float64) * _TO_UNIT, dtype=np.float64)


def bit_fields(hashes: U64, count: int) -> list[F64]:
    """Split each 64-bit hash into ``count`` (2 or 4) independent uniforms in [0, 1).

    One hash per (meter, slot) feeding several uniforms keeps the simulator at millions of readings
    per second; 16 bits of resolution are ample for noise, and 32 for rare-event probabilities.
    """
    width = 64 // count
    mask = np.uint64((1 << width) - 1)
    scale = 1.0 / float(1 << width)
    return [
        np.asarray(((hashes >> np.uint64(width * i)) & mask).astype(np.float64) * scale, dtype=np.float64)
        for i in range(count)
    ]
