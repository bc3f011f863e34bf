"""The check of a board's identity.

A board's identity is untrusted input: :meth:`host.link.Link.identify` refuses one that describes no
engine this host can lay a model out for (:func:`check_identity`) before anything uses its numbers.
"""

from host.board import board_capacity
from host.errors import LinkError
from layout.images import link_memories
from layout.params import CompileError, EngineParams, check_capacity, check_folding
from layout.protocol import LoadTarget


class IdentityError(LinkError):
    """A board answered IDENTIFY, but not with an identity this host can use: another protocol
    version, a payload of the wrong size or magic, or fields out of range (:func:`check_identity`)."""



def check_identity(identity, name="the board"):
    """Raise :class:`IdentityError` unless ``identity`` describes a board this host can use: a clock,
    a line rate and a receive timeout above 0; ``weights_in_spram`` and ``conv`` 0 or 1; 1- or 8-bit
    input; an engine :func:`layout.params.check_folding` accepts, with the sizes
    :func:`layout.params.check_capacity` accepts (``gather_rows`` 1 unless ``conv``, whose S is a
    power of two); and the load targets an engine of these parameters has
    (:func:`layout.images.link_memories`: every width above 0). The message names the field and
    its value."""
    def refuse(claim):
        raise IdentityError(f"the identity of {name} says {claim}: not a board this host can use")

    for field in ("clock_hz", "baud", "timeout_cycles"):
        if getattr(identity, field) < 1:
            refuse(f"{field} {getattr(identity, field)}")
    for field in ("weights_in_spram", "conv"):
        if getattr(identity, field) not in (0, 1):
            refuse(f"{field} {getattr(identity, field)} (0 or 1)")
    if identity.input_bits not in (1, 8):
        refuse(f"input_bits {identity.input_bits} (1 or 8)")
    if not identity.conv and identity.gather_rows != 1:
        refuse(f"gather_rows {identity.gather_rows} in an engine without conv (1)")
    if identity.conv and identity.simd & (identity.simd - 1):
        refuse(f"simd {identity.simd} in a conv engine (a power of two)")
    capacity = board_capacity(identity)
    try:
        check_folding(identity.pe, identity.simd, pixels_per_beat=identity.pixels_per_beat,
                      tree_stages=identity.tree_stages)
        check_capacity(capacity)
    except CompileError as e:
        refuse(f"an engine that cannot be built ({e})")
    params = EngineParams(pe=identity.pe, simd=identity.simd, input_bits=identity.input_bits,
                          pixels_per_beat=identity.pixels_per_beat, tree_stages=identity.tree_stages,
                          conv=bool(identity.conv), **capacity)
    built = link_memories(params)
    for target, memory in zip(LoadTarget, identity.memories):
        if memory.width != built[target].width:
            refuse(f"a {memory.width}-bit {target.name} word (its engine has {built[target].width}-bit ones)")
        if memory.depth != built[target].depth:
            refuse(f"{memory.depth} {target.name} words (its engine has {built[target].depth})")
