"""Exact accumulation of float64 values into integer bins (the reductions' accumulator).

A float64 with sign ``s``, biased exponent ``E`` and fraction field ``f`` is, in units of
``2**-1074``, ``(-1)**s * f`` if ``E == 0`` and ``(-1)**s * (2**52 + f) * 2**(E - 1)``
otherwise. These kernels add the values into bins keyed by ``s * 2048 + E``: per bin, the
count and the sums of the high and low 26 bits of ``f``, all in int64 (exact for up to
``2**36`` values per bin). Integer sums do not depend on the order of the additions, so the
bins do not either; ``crossent._partial`` turns them into one Python ``int``.

``bins`` has shape ``(3, 4096)``, rows count / high sum / low sum; the kernels add to it.
"""

from __future__ import annotations

from ._base import jit

FRAC_MASK = (1 << 52) - 1
HALF_BITS = 26
HALF_MASK = (1 << HALF_BITS) - 1


@jit(inline=True)
def _add(bins, b):
    key = (b >> 52) & 0xFFF  # b is the int64 view: mask the arithmetic shift's sign copies
    f = b & FRAC_MASK
    bins[0, key] += 1
    bins[1, key] += f >> HALF_BITS
    bins[2, key] += f & HALF_MASK


@jit
def accumulate(bits, bins):
    """Add the float64 values whose int64 views are ``bits`` (1-d) into ``bins``."""
    for i in range(bits.shape[0]):
        _add(bins, bits[i])


@jit
def accumulate_label_weights(labels, weight_bits, has_weight, ignore_index, bins):
    """Add ``weight[y]`` (int64 view ``weight_bits``; 1.0 if not ``has_weight``) of every
    label ``y != ignore_index`` into ``bins``. Labels are validated by the caller."""
    one = 1023 << 52  # the bits of 1.0
    for n in range(labels.shape[0]):
        y = labels[n]
        if y == ignore_index:
            continue
        _add(bins, weight_bits[y] if has_weight else one)
