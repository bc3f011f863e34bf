"""The board top level: PLL, reset, the serial pins, and the link core (:class:`hw.link.LinkCore`)
between them.

The link core and the engine in it are kept as modules of their own in the netlist (the build sets
Yosys' ``keep_hierarchy`` on them), so that the engine's resources can be counted and its netlist
checked on its own (``bnn build --verify``), and the link core's netlist, everything but the PLL and
the pins, served on a simulated serial line (``bnn serve-sim --netlist``).
"""

from amaranth.hdl import ClockDomain, ClockSignal, Elaboratable, Module, Signal
from amaranth.lib import io
from amaranth.lib.cdc import ResetSynchronizer

from .link import LinkCore
from .pll import pll_instance


class BoardTop(Elaboratable):
    """A board's top level for one compiled model.

    Parameters
    ----------
    compiled : layout.compiler.CompiledModel
    board : hw.boards.Board
    pll : hw.pll.PllSettings
        The engine clock, made from the board's oscillator.
    baud : int
        The serial line's rate.
    weights_in_spram : bool
        The weights in the UP5K's SPRAMs (see :class:`hw.engine.Engine`).
    """

    def __init__(self, compiled, *, board, pll, baud, weights_in_spram=False):
        self._compiled = compiled
        self._board = board
        self._pll = pll
        self._baud = baud
        self._weights_in_spram = weights_in_spram

    def elaborate(self, platform):
        m = Module()
        m.domains.sync = ClockDomain("sync")
        clock_pin = platform.request(self._board.clock_resource(platform), dir="-")
        if self._board.pll_from_pad:
            reference = clock_pin.io
        else:
            m.submodules.clock_buffer = clock_buffer = io.Buffer("i", clock_pin)
            reference = clock_buffer.i
        # nextpnr derives the PLL output's constraint from the oscillator's
        locked = Signal()
        m.submodules.pll = pll_instance(self._pll, reference, ClockSignal("sync"), locked)
        m.submodules.reset = ResetSynchronizer(~locked, domain="sync")

        uart = platform.request("uart", 0, dir="-")
        m.submodules.rx_buffer = rx_buffer = io.Buffer("i", uart.rx)
        m.submodules.tx_buffer = tx_buffer = io.Buffer("o", uart.tx)
        if self._board.uart_enable:
            m.submodules.uart_enable = enable = io.Buffer("o", platform.request(self._board.uart_enable, 0, dir="-"))
            m.d.comb += enable.o.eq(1)
        m.submodules.link = link = LinkCore(self._compiled, clock_hz=self._pll.clock_hz, baud=self._baud,
                                            logic_memory_bits=self._board.logic_memory_bits,
                                            weights_in_spram=self._weights_in_spram)
        m.d.comb += [link.rx.eq(rx_buffer.i), tx_buffer.o.eq(link.tx)]
        return m
