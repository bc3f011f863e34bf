"""What the host needs to know about a board's engine: a model laid out for its built sizes, and the
memory images and id a load writes (defined by the gateware, :mod:`hw.link`)."""

from hw.compiler import compile_model
from hw.link import memory_images, model_id  # noqa: F401  (the gateware defines what a load writes)
from hw.params import CAPACITY_KEYS, CompileError
from host.protocol import LoadTarget


def compile_for_board(model, identity):
    """Lay out ``model`` for the engine a board reports in its :class:`~host.protocol.Identity`.

    Raises :class:`hw.compiler.CompileError` (one line) if the model's input width differs from
    the board's, it has convolutions and the board's engine is not a ``conv`` engine, or the model
    does not fit the board's built sizes (the compiler's message names both numbers). A ``conv``
    engine runs fully connected models too, laid out as windows.
    """
    if model.input.bits != identity.input_bits:
        raise CompileError(f"the model takes {model.input.bits}-bit input but the board's engine "
                           f"was built for {identity.input_bits}-bit input")
    memories = identity.memories
    # The memory depths come from the load targets' sizes; every other size is an Identity field
    # of the same name.
    depths = {"weight_depth": memories[LoadTarget.WEIGHTS].depth,
              "start_depth": memories[LoadTarget.STARTS].depth,
              "max_layers": memories[LoadTarget.DESCRIPTORS].depth}
    capacity = {key: depths[key] if key in depths else getattr(identity, key) for key in CAPACITY_KEYS}
    return compile_model(model, pe=identity.pe, simd=identity.simd, tree_stages=identity.tree_stages,
                         pixels_per_beat=identity.pixels_per_beat, capacity=capacity, conv=bool(identity.conv))
