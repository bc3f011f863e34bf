"""Memories the host can write at run time, one byte at a time.

A loadable memory of ``width``-bit words is built ``byte_lanes(width) * 8`` bits wide, with a
write port of 8-bit granularity: byte ``j`` of a word (little-endian, as the link carries it,
see :class:`host.protocol.LoadTarget`) is written on its own through lane ``j``. Rows of
structured tables (descriptors, the network row) are stored as the integer value of their layout.
"""

from amaranth.hdl import Const, Mux
from amaranth.lib import wiring
from amaranth.lib.memory import WritePort
from amaranth.lib.wiring import Out

from host.protocol import LoadTarget, word_bytes

ADDRESS_BITS = 16   # a LOAD's address field
MAX_LANES = 512     # byte lanes of the widest loadable word (4096 bits)


def byte_lanes(width):
    """Byte lanes of a loadable word of ``width`` bits."""
    if not 0 < width <= 8 * MAX_LANES:
        raise ValueError(f"a loadable word is 1..{8 * MAX_LANES} bits, not {width!r}")
    return word_bytes(width)


def row_value(layout, values):
    """The integer a memory of ``layout``-shaped rows stores for the row ``values`` (a dict)."""
    return layout.const(values).as_value().value


def load_signature():
    """The link's writes, as the writer drives them: one byte ``data`` to byte lane ``lane`` of the
    word at ``addr`` of the memory ``target``, when ``en``.

    ``addr``, ``data`` and ``en`` are a byte-wide :class:`amaranth.lib.memory.WritePort.Signature`
    (flipped: the writer's side); ``target`` and ``lane`` say which memory and which byte of its
    word. The writer checks the address against the target's depth; a memory only decodes
    ``target`` (:func:`drive_write_port`).
    """
    byte_port = WritePort.Signature(addr_width=ADDRESS_BITS, shape=8).flip()
    return wiring.Signature({"target": Out(range(len(LoadTarget))), "lane": Out(range(MAX_LANES)),
                             **byte_port.members})


def drive_write_port(m, port, load, target):
    """Drive ``port`` (a granularity-8 write port) from ``load`` for writes to ``target``."""
    lanes = len(port.en)
    m.d.comb += [
        port.addr.eq(load.addr),
        port.data.eq(load.data.replicate(lanes)),
        port.en.eq(Mux(load.en & (load.target == target), Const(1, lanes) << load.lane, 0)),
    ]
