"""The weight memory in the iCE40 UP5K's single-port RAMs (SB_SPRAM256KA).

The UP5K has four SPRAMs of 16 K words of 16 bits (1 Mbit), next to only 120 Kbit of block RAM.
Side by side they give 64-bit words: the weights of a P x S engine with P * S <= 64. The
bitstream cannot initialise them: a board built this way holds no model until the host loads
one (``weights_in_spram`` in the identity).
"""

from amaranth.hdl import Cat, ClockSignal, Const, Instance, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from layout.protocol import LoadTarget
from layout.rows import index_shape

from .loadable import load_signature

SPRAM_DEPTH = 16384
SPRAM_WIDTH = 16
SPRAMS = 4


def check_spram_fit(depth, width):
    """Raise ValueError unless ``depth`` words of ``width`` bits fit the four SPRAMs."""
    if width > SPRAMS * SPRAM_WIDTH:
        raise ValueError(f"SPRAM weights are at most {SPRAMS * SPRAM_WIDTH} bits wide (P x S), not {width}")
    if depth > SPRAM_DEPTH:
        raise ValueError(f"SPRAM weights are at most {SPRAM_DEPTH} words deep, not {depth}")


class WeightSpram(wiring.Component):
    """``depth`` words of ``width`` bits in ``ceil(width / 16)`` SPRAMs, read every cycle and
    written by LOADs of :attr:`layout.protocol.LoadTarget.WEIGHTS`.

    On a platform it instantiates SB_SPRAM256KA; without one (simulation) it is a memory with
    the same timing. A write takes the shared address port, so the engine must be idle.

    Members
    -------
    addr : In(range(depth))
    data : Out(width)
        The word at the ``addr`` of the previous cycle (the SPRAM's output register).
    load : In(hw.loadable.load_signature())
    """

    def __init__(self, depth, width):
        check_spram_fit(depth, width)
        self._banks = -(-width // SPRAM_WIDTH)
        self._width = width
        super().__init__({"addr": In(index_shape(depth)), "data": Out(width), "load": In(load_signature())})

    def elaborate(self, platform):
        m = Module()
        load = self.load
        write = load.en & (load.target == LoadTarget.WEIGHTS)
        address = Signal(14)
        m.d.comb += address.eq(Mux(write, load.addr, self.addr))
        if platform is None:
            lanes = 2 * self._banks
            m.submodules.model = model = Memory(shape=8 * lanes, depth=SPRAM_DEPTH, init=[])
            read = model.read_port(domain="sync", transparent_for=())
            written = model.write_port(granularity=8)
            m.d.comb += [read.addr.eq(address), self.data.eq(read.data[:self._width]),
                         written.addr.eq(address), written.data.eq(load.data.replicate(lanes)),
                         written.en.eq(Mux(write, Const(1, lanes) << load.lane, 0))]
            return m
        words = []
        for bank in range(self._banks):
            word = Signal(SPRAM_WIDTH, name=f"spram{bank}_data")
            # byte lane 2b is nibbles 0-1 of SPRAM b, lane 2b + 1 nibbles 2-3
            mask = Mux(load.lane[0], 0b1100, 0b0011)
            m.submodules[f"spram{bank}"] = Instance(
                "SB_SPRAM256KA",
                i_ADDRESS=address, i_DATAIN=Cat(load.data, load.data), i_MASKWREN=mask,
                i_WREN=write & (load.lane[1:] == bank), i_CHIPSELECT=1, i_CLOCK=ClockSignal(),
                i_STANDBY=0, i_SLEEP=0, i_POWEROFF=1, o_DATAOUT=word)
            words.append(word)
        m.d.comb += self.data.eq(Cat(*words)[:self._width])
        return m

