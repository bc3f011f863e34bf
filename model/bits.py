"""The one definition of how {-1,+1} vectors are stored as bits.

Every side (model file, golden model, compiler, gateware, host) uses these functions.

Convention
----------
* Bit value 1 means +1, bit value 0 means -1. sign(0) = +1.
* A vector of ``n`` values is stored in ``ceil(n / 8)`` bytes. Element ``i`` is bit ``i % 8``
  (bit 0 = least significant) of byte ``i // 8`` ("little" bit order, LSB first).
* Pad bits beyond ``n`` are 0.
* Grouped into wider words of ``width`` bits (as the hardware reads them), element ``i`` is bit
  ``i % width`` of word ``i // width``; this is the same order as the bytes read little-endian.
"""

import numpy as np


def packed_bytes(n):
    """Number of bytes that hold ``n`` bits."""
    return (n + 7) // 8


def sign_bits(values):
    """Map real values to bits: 1 where ``values >= 0`` (sign(0) = +1), else 0. Returns uint8."""
    return (np.asarray(values) >= 0).astype(np.uint8)


def pack_bits(bits):
    """Pack a ``(..., n)`` array of 0/1 values into ``(..., ceil(n/8))`` uint8, LSB first."""
    bits = np.asarray(bits)
    if bits.size and bits.max(initial=0) > 1:
        raise ValueError("pack_bits takes 0/1 values")
    return np.packbits(bits.astype(np.uint8), axis=-1, bitorder="little")


def unpack_bits(packed, n):
    """Inverse of :func:`pack_bits`: ``(..., ceil(n/8))`` uint8 to ``(..., n)`` uint8 of 0/1."""
    packed = np.asarray(packed, dtype=np.uint8)
    return np.unpackbits(packed, axis=-1, count=n, bitorder="little")


def pack_signs(signs):
    """Pack a ``(..., n)`` array of real values by their sign (``>= 0`` is +1)."""
    return pack_bits(sign_bits(signs))


def unpack_signs(packed, n):
    """Unpack to a ``(..., n)`` int8 array of -1/+1."""
    return unpack_bits(packed, n).astype(np.int8) * 2 - 1


def pad_bits_are_zero(packed, n):
    """True if every pad bit (positions ``n`` and beyond) of every row is 0."""
    packed = np.asarray(packed, dtype=np.uint8)
    rem = n % 8
    if rem == 0 or packed.shape[-1] == 0:
        return True
    return not np.any(packed[..., -1] >> rem)


def to_words(packed, n, width):
    """Split packed rows into Python-int words of ``width`` bits, in the order defined above.

    ``packed`` is ``(rows, ceil(n/8))`` with zero pad bits; returns one list per row of
    ``ceil(n / width)`` ints (the last word zero-padded).
    """
    if width <= 0:
        raise ValueError(f"word width must be positive, not {width!r}")
    packed = np.asarray(packed, dtype=np.uint8)
    count = -(-n // width)
    mask = (1 << width) - 1
    rows = []
    for row in packed.reshape(-1, packed.shape[-1]):
        value = int.from_bytes(row.tobytes(), "little")
        rows.append([(value >> (k * width)) & mask for k in range(count)])
    return rows
