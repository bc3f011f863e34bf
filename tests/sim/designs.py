"""A small stream design for the CXXRTL back end's tests, importable by the subprocesses they start."""

from amaranth import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out


class PairSum(wiring.Component):
    """Adds each pair of input tokens, plus ``bias[first % 16]`` from an initialised memory.

    The memory has 12 rows: addresses 12 to 15 read 0 (out of range, as Amaranth defines it).

    The sum waits in an output register; ``i.ready`` is low while it waits and is not taken.

    Members
    -------
    i : ``In(stream.Signature(width))``
    o : ``Out(stream.Signature(width + 2))``
    """

    def __init__(self, width, bias):
        self._width = width
        self._bias = [int(b) for b in bias]
        super().__init__({"i": In(stream.Signature(width)), "o": Out(stream.Signature(width + 2))})

    def elaborate(self, platform):
        m = Module()
        m.submodules.bias = bias = Memory(shape=self._width, depth=12, init=self._bias)
        read = bias.read_port()
        first = Signal(self._width)
        have_first = Signal()
        taken = self.i.valid & self.i.ready
        m.d.comb += [
            self.i.ready.eq(~self.o.valid | self.o.ready),
            read.addr.eq(self.i.payload[:4]),
            read.en.eq(taken & ~have_first),
        ]
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(taken & have_first):
            m.d.sync += [self.o.payload.eq(first + self.i.payload + read.data),
                         self.o.valid.eq(1), have_first.eq(0)]
        with m.Elif(taken):
            m.d.sync += [first.eq(self.i.payload), have_first.eq(1)]
        return m
