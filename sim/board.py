"""A board seen from its serial cable: a core with a serial line, wrapped as a byte-stream design.

:class:`SerialLine` puts the host's UART in front of a core whose ports are a serial line (``rx``
into the board, ``tx`` out of it). The result has one input and one output byte stream, the
shape :class:`sim.cxxrtl.StreamSimulator` runs, so the board's UART bit timing is simulated cycle
by cycle by the compiled simulator, unchanged.
"""

from dataclasses import dataclass

from amaranth.hdl import Module, Shape
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from hw.plan import link_clock, plan_engine
from hw.link import LinkCore
from hw.uart import UartRx, UartTx
from layout.protocol import MAX_INFER_FRAMES

from .cxxrtl_build import build_library as build_cxxrtl_library, convert_stream_design


def _is_port(members, name, flow):
    """Whether ``members`` has a one-bit port ``name`` of direction ``flow``."""
    member = members[name] if name in members else None
    return member is not None and member.is_port and member.flow == flow and Shape.cast(member.shape).width == 1


class SerialLine(wiring.Component):
    """The host's end of a core's serial line: bytes in, bytes out, 8N1 bits in between.

    Each byte taken on ``i`` is sent onto ``core.rx`` by a :class:`hw.uart.UartTx` (the host's
    UART; bytes offered back to back go out with no idle time between frames, as from a host
    whose transmit buffer never runs dry), and ``core.tx`` is decoded by a
    :class:`hw.uart.UartRx` into ``o``. A byte leaves on ``o`` in the cycle after its stop bit's
    middle; ``i`` takes the next byte in the last cycle of the previous one's stop bit.

    What is simulated: the core, at its own clock, cycle by cycle, and every bit on both wires.
    What is not: there is no PLL (the core's ``sync`` domain is the simulation's clock, so it runs
    at the clock frequency the core was built for directly, from cycle 0, out of reset); the two
    UARTs here share the core's clock, so there is no rate error between host and board and no
    metastability on ``rx`` (a core that has a synchroniser on ``rx`` keeps its latency); the host
    side never drops a byte (``o`` should always be ready: a byte still held on ``o`` when the next
    one arrives is lost, as :class:`hw.uart.UartRx` defines).

    Parameters
    ----------
    core : wiring.Component
        Has members ``rx: In(1)`` (idle 1) and ``tx: Out(1)`` (idle 1), clocked by ``sync``.
    divisor : int
        Clock cycles per bit (:func:`hw.uart.uart_divisor`): the board's baud rate at its clock.

    Members
    -------
    i : In(stream.Signature(8))
        Bytes the host sends.
    o : Out(stream.Signature(8))
        Bytes the board sent, as the host receives them.
    """

    i: In(stream.Signature(8))
    o: Out(stream.Signature(8))

    def __init__(self, core, divisor):
        members = getattr(getattr(core, "signature", None), "members", None)
        if members is None or not all(_is_port(members, name, flow) for name, flow in (("rx", In), ("tx", Out))):
            raise TypeError(f"core must be a wiring.Component with members rx: In(1) and tx: Out(1), "
                            f"not {core!r}")
        self._core = core
        self._tx = UartTx(divisor)   # raises ValueError on a bad divisor
        self._rx = UartRx(divisor)
        self._divisor = divisor
        super().__init__()

    @property
    def core(self):
        """The board's core."""
        return self._core

    @property
    def divisor(self):
        """Clock cycles per bit."""
        return self._divisor

    def elaborate(self, platform):
        m = Module()
        m.submodules.core = core = self._core
        m.submodules.host_tx = host_tx = self._tx
        m.submodules.host_rx = host_rx = self._rx
        wiring.connect(m, wiring.flipped(self.i), host_tx.data)
        wiring.connect(m, host_rx.data, wiring.flipped(self.o))
        m.d.comb += [core.rx.eq(host_tx.tx), host_rx.rx.eq(core.tx)]
        return m


# Byte times of slack in the idle window, beyond the board's timeout and computation: the
# response's first byte on the line, and the bytes still in the host's UART when the last was taken.
_SLACK_BYTES = 20


def idle_window(*, timeout_cycles, cycles_per_frame, latency, divisor):
    """Cycles to keep simulating a board after the last byte in or out (see :mod:`sim.serve`): its
    receive timeout, the computation of the largest request, and a few byte times."""
    return timeout_cycles + MAX_INFER_FRAMES * (cycles_per_frame + latency) + _SLACK_BYTES * 10 * divisor


def quiet_window(divisor):
    """Cycles without a byte from a board after which its answer counts as finished (see
    :mod:`sim.serve`): 3 byte times."""
    return 30 * divisor


@dataclass(frozen=True)
class SimulatedBoard:
    """A board's link core for one model, as ``bnn build`` would build it, ready to simulate."""

    board: object              # hw.boards.Board
    compiled: object           # layout.compiler.CompiledModel (sizes the engine; its initial model)
    weights_in_spram: bool
    clock_hz: int
    baud: int
    baud_error: float
    divisor: int
    core: object               # hw.link.LinkCore

    @property
    def pe(self):
        return self.compiled.params.pe

    @property
    def simd(self):
        return self.compiled.params.simd

    @property
    def timeout_cycles(self):
        """The board's receive timeout."""
        return self.core.identity.timeout_cycles

    @property
    def cycles_per_frame(self):
        return self.compiled.cycles_per_frame

    @property
    def idle_cycles(self):
        """:func:`idle_window` of this board."""
        return idle_window(timeout_cycles=self.timeout_cycles, cycles_per_frame=self.compiled.cycles_per_frame,
                           latency=self.compiled.latency, divisor=self.divisor)

    @property
    def quiet_cycles(self):
        """:func:`quiet_window` of this board."""
        return quiet_window(self.divisor)

    def compile(self):
        """The compiled CXXRTL model of :class:`SerialLine` around the core (cached)."""
        return build_cxxrtl_library(convert_stream_design(SerialLine(self.core, self.divisor)))


def simulated_board(model, board, *, pe, simd, clock_mhz=None, baud=3_000_000, weights="auto"):
    """The :class:`SimulatedBoard` of ``model`` on ``board`` (a :class:`hw.boards.Board`): the
    engine, weight placement, clock and serial line ``bnn build`` would choose for the same
    arguments. Raises :class:`hw.plan.PlanError` if it does not fit or the baud rate is off."""
    compiled, in_spram = plan_engine(model, board, pe=pe, simd=simd, weights=weights)
    pll, divisor, baud_error = link_clock(board, clock_mhz, baud)
    core = LinkCore(compiled, clock_hz=pll.clock_hz, baud=baud, logic_memory_bits=board.logic_memory_bits,
                    weights_in_spram=in_spram)
    return SimulatedBoard(board, compiled, in_spram, pll.clock_hz, baud, baud_error, divisor, core)
