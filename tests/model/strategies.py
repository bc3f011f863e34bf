"""Hypothesis strategies: small valid fully connected models and images for them."""

import numpy as np
from hypothesis import strategies as st

from model.bits import packed_bytes
from model.modelfile import BinaryLayer, BinaryModel, InputEncoding

METADATA = st.dictionaries(
    st.text(max_size=8),
    st.one_of(st.none(), st.booleans(), st.integers(-2**53, 2**53), st.floats(allow_nan=False, allow_infinity=False),
              st.text(max_size=12), st.lists(st.integers(-5, 5), max_size=3)),
    max_size=4)


def _factorisations(size):
    """Shapes the input can be displayed as: ``(size,)`` and every ``(rows, columns)``."""
    return [(size,)] + [(rows, size // rows) for rows in range(1, size + 1) if size % rows == 0]


def _packed_rows(draw, rows, fan_in):
    """``(rows, ceil(fan_in/8))`` uint8 of random bits, pad bits 0."""
    width = packed_bytes(fan_in)
    packed = np.frombuffer(draw(st.binary(min_size=rows * width, max_size=rows * width)), np.uint8)
    packed = packed.reshape(rows, width).copy()
    packed[:, -1] &= (1 << (fan_in - 8 * (width - 1))) - 1   # keep the bits of the last byte below fan_in
    return packed


@st.composite
def binary_models(draw, max_layers=3, max_width=12, with_metadata=False):
    """A valid dense :class:`BinaryModel`: 1 to ``max_layers`` layers of at most ``max_width``
    neurons (the input too), 8-bit or 1-bit input (threshold anywhere in 0..256), thresholds
    anywhere in the allowed range, its ends (constant neurons) included."""
    sizes = draw(st.lists(st.integers(1, max_width), min_size=1, max_size=max_layers))
    sizes.append(draw(st.integers(2, max_width)))
    bits = draw(st.sampled_from([8, 1]))
    threshold = draw(st.integers(0, 256)) if bits == 1 else None
    encoding = InputEncoding(bits, sizes[0], draw(st.sampled_from(_factorisations(sizes[0]))), threshold)
    layers = []
    for k, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        thresholds = None
        if k < len(sizes) - 2:
            bound = fan_in * (encoding.max_value if k == 0 else 1)
            typical = st.integers(-min(bound, 3 * fan_in), min(bound, 3 * fan_in))
            value = st.one_of(typical, st.integers(-bound, bound + 1), st.sampled_from([-bound, bound + 1]))
            thresholds = np.array(draw(st.lists(value, min_size=fan_out, max_size=fan_out)), np.int32)
        layers.append(BinaryLayer(fan_in, fan_out, _packed_rows(draw, fan_out, fan_in), thresholds))
    metadata = draw(METADATA) if with_metadata else {}
    return BinaryModel(encoding, tuple(layers), metadata).validate()


def images_for(model, max_count=6):
    """Raw uint8 images for ``model``: random pixels, with the extremes 0 and 255 likely."""
    pixel = st.one_of(st.integers(0, 255), st.sampled_from([0, 1, 127, 128, 254, 255]))
    image = st.lists(pixel, min_size=model.input.size, max_size=model.input.size)
    return st.lists(image, min_size=1, max_size=max_count).map(lambda rows: np.array(rows, np.uint8))
