"""A model laid out for the engine a board reports (its memory images and id: :mod:`layout.images`)."""

from layout.compiler import compile_model
from layout.params import CAPACITY_KEYS, CompileError
from layout.protocol import LoadTarget


def compile_for_board(model, identity):
    """Lay out ``model`` for the engine a board reports in its :class:`~layout.protocol.Identity`.

    Raises :class:`layout.compiler.CompileError` (one line) if the model's input width differs from
    the board's, it has convolutions and the board's engine is not a ``conv`` engine, or the model
    does not fit the board's built sizes (the compiler's message names both numbers). A ``conv``
    engine runs fully connected models too, laid out as windows.
    """
    if model.input.bits != identity.input_bits:
        raise CompileError(f"the model takes {model.input.bits}-bit input but the board's engine "
                           f"was built for {identity.input_bits}-bit input")
    return compile_model(model, pe=identity.pe, simd=identity.simd, tree_stages=identity.tree_stages,
                         pixels_per_beat=identity.pixels_per_beat, capacity=board_capacity(identity),
                         conv=bool(identity.conv))


def board_capacity(identity):
    """The sizes (:data:`layout.params.CAPACITY_KEYS`) of the engine an
    :class:`~layout.protocol.Identity` describes: the weight and start memory depths are its load
    targets' (WEIGHTS, STARTS), every other size the Identity field of the same name."""
    memories = identity.memories
    depths = {"weight_depth": memories[LoadTarget.WEIGHTS].depth, "start_depth": memories[LoadTarget.STARTS].depth}
    return {key: depths[key] if key in depths else getattr(identity, key) for key in CAPACITY_KEYS}
