"""Memories the host can write at run time, one byte at a time.

A loadable memory of ``width``-bit words is built ``byte_lanes(width) * 8`` bits wide, with a
write port of 8-bit granularity: byte ``j`` of a word (little-endian, as the link carries it,
see :class:`layout.protocol.LoadTarget`) is written on its own through lane ``j``. The rows' layouts
and the integers stored for them are :mod:`layout.rows`'.
"""

from amaranth.hdl import Const, Mux
from amaranth.lib import wiring
from amaranth.lib.memory import WritePort
from amaranth.lib.wiring import Out

from layout.params import MAX_LANES as MAX_BITS
from layout.protocol import LoadTarget

ADDRESS_BITS = 16   # a LOAD's address field
MAX_LANES = MAX_BITS // 8    # byte lanes of the widest loadable word


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
