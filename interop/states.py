"""The states of the one computed tensor the importer follows through a QONNX graph
(:mod:`interop.qonnx_import`); each holds its order (:mod:`interop.graph`) or its shape."""

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Pixels:
    """The graph's input: pixel ``p`` is the float32 ``p * input_scale``; ``chain`` holds the
    elementwise nodes applied to it so far."""

    order: np.ndarray
    chain: list = field(default_factory=list)


@dataclass
class Values:
    """Binary values (or the pixels after an 8-bit ``Quant``): the graph holds ``mid + half * v``, ``v``
    the engine's value."""

    order: np.ndarray
    mid: float
    half: float
    pixels: bool = False    # v is a pixel 0..255 (after an 8-bit Quant), not +1/-1


@dataclass
class Pre:
    """Pre-activations of a layer with weights: ``start`` holds ``scales_j * (half * y_j + mid * sums_j)``,
    ``chain`` the nodes after it (with their ``constants``, one value per channel) so far."""

    node: object            # the MatMul, Gemm or Conv
    signs: np.ndarray       # (outputs, fan_in) of -1/+1, columns in the project's order
    scales: np.ndarray      # (outputs,)
    sums: np.ndarray        # (outputs,): S_j
    mid: float
    half: float
    bound: int
    in_shape: tuple         # the project's input shape of a convolution, None for a dense layer
    shape: tuple            # the ONNX shape of the pre-activation tensor
    start: str              # the tensor that holds scale_j * (half * y_j + mid * S_j)
    chain: list = field(default_factory=list)
    constants: dict = field(default_factory=dict)

    @property
    def channel_shape(self):
        """The shape the nodes are run on: one value per output channel."""
        return (len(self.signs),) + (1, 1) * (len(self.shape) == 4)


class Scores:
    """The class scores or the chosen class: nothing may follow."""
