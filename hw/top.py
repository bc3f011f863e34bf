"""The board top level: PLL, reset, the serial line, and the engine between them.

Until the framed host protocol exists, the serial link is raw: every byte received is one pixel
(frames back to back, ``input_size`` bytes each, as :func:`sim.stimulus.frame_beats` orders
them), and every result goes back as one byte, its class. The engine is kept as its own module
in the netlist (the build sets Yosys' ``keep_hierarchy`` on it), so that synthesis keeps all of
it, whatever the link uses, and its netlist can be checked on its own (``bnn build --verify``).
"""

from amaranth.hdl import ClockDomain, ClockSignal, Elaboratable, Module, Signal
from amaranth.lib import io, stream, wiring
from amaranth.lib.cdc import FFSynchronizer, ResetSynchronizer
from amaranth.lib.wiring import In, Out

from .engine import Engine
from .loader import pixel_layout
from .pll import pll_instance
from .uart import UartRx, UartTx


class PixelPacker(wiring.Component):
    """Groups a byte stream into the engine's input beats of K pixels.

    A frame is ``input_size`` bytes; its last beat is sent with the bytes it has (the engine
    ignores lanes past the frame's end), and the next frame starts a new beat.

    Members
    -------
    bytes : In(stream.Signature(8))
    beats : Out(stream.Signature(ArrayLayout(8, pixels_per_beat)))
    """

    def __init__(self, pixels_per_beat, input_size):
        self._per_beat, self._size = pixels_per_beat, input_size
        super().__init__({"bytes": In(stream.Signature(8)),
                          "beats": Out(stream.Signature(pixel_layout(pixels_per_beat)))})

    def elaborate(self, platform):
        m = Module()
        lane = Signal(range(max(self._per_beat, 2)))
        pixel = Signal(range(self._size))
        beat_full = (lane == self._per_beat - 1) | (pixel == self._size - 1)
        m.d.comb += self.bytes.ready.eq(~self.beats.valid | self.beats.ready)
        with m.If(self.beats.valid & self.beats.ready):
            m.d.sync += self.beats.valid.eq(0)
        with m.If(self.bytes.valid & self.bytes.ready):
            for k in range(self._per_beat):
                with m.If(lane == k):
                    m.d.sync += self.beats.payload[k].eq(self.bytes.payload)
            m.d.sync += [lane.eq(0), pixel.eq(0)]
            with m.If(beat_full):
                m.d.sync += self.beats.valid.eq(1)
                with m.If(pixel != self._size - 1):
                    m.d.sync += pixel.eq(pixel + 1)
            with m.Else():
                m.d.sync += [lane.eq(lane + 1), pixel.eq(pixel + 1)]
        return m


class BoardTop(Elaboratable):
    """A board's top level for one compiled model.

    Parameters
    ----------
    compiled : hw.compiler.CompiledModel
    board : hw.boards.Board
    pll : hw.pll.PllSettings
        The engine clock, made from the board's oscillator.
    uart_divisor : int
        Clock cycles per bit on the serial line.
    """

    def __init__(self, compiled, *, board, pll, uart_divisor):
        self._compiled = compiled
        self._board = board
        self._pll = pll
        self._divisor = uart_divisor

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
        m.submodules.rx = rx = UartRx(self._divisor)
        m.submodules.tx = tx = UartTx(self._divisor)
        m.submodules.rx_sync = FFSynchronizer(rx_buffer.i, rx.rx, init=1)
        m.d.comb += tx_buffer.o.eq(tx.tx)

        compiled = self._compiled
        m.submodules.engine = engine = Engine(compiled, logic_memory_bits=self._board.logic_memory_bits)
        m.submodules.packer = packer = PixelPacker(compiled.params.pixels_per_beat, compiled.image.input_size)
        wiring.connect(m, rx.data, packer.bytes)
        wiring.connect(m, packer.beats, engine.pixels)
        m.d.comb += [
            tx.data.valid.eq(engine.results.valid),
            tx.data.payload.eq(engine.results.payload.cls),
            engine.results.ready.eq(tx.data.ready),
        ]
        return m
