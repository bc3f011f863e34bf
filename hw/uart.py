"""A UART: 8 data bits, no parity, one stop bit (8N1), least significant bit first.

The bit period is ``divisor`` clock cycles (``round(clock / baud)``), fixed at elaboration.
"""

from amaranth.hdl import Assert, Cat, Cover, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out


def _check_divisor(divisor):
    if isinstance(divisor, bool) or not isinstance(divisor, int) or divisor < 4:
        raise ValueError(f"UART divisor must be an integer of at least 4 clock cycles per bit, not {divisor!r}")
    return divisor


def uart_divisor(clock_hz, baud):
    """Clock cycles per bit for ``baud`` at ``clock_hz``, and the baud rate's relative error."""
    divisor = round(clock_hz / baud)
    return divisor, (clock_hz / divisor - baud) / baud


class UartTx(wiring.Component):
    """Sends each byte of ``data`` on ``tx``: a start bit (0), 8 data bits LSB first, a stop bit (1).

    Members
    -------
    data : In(stream.Signature(8))
        Taken when the line is idle or in the stop bit's last cycle: bytes offered back to back
        go out with no idle time between frames.
    tx : Out(1, init=1)
        The serial line, 1 when idle.
    """


    def __init__(self, divisor):
        self._divisor = _check_divisor(divisor)
        super().__init__({"data": In(stream.Signature(8)), "tx": Out(1, init=1)})

    def elaborate(self, platform):
        m = Module()
        # the start and data bits still to send, LSB first, filled with 1s (the stop bit and
        # the idle line) as they go: no register bit that is always 1, which the CXXRTL back
        # end would have to evaluate twice a cycle
        frame = Signal(9, init=0x1ff)
        bits_left = Signal(range(11))
        timer = Signal(range(self._divisor))
        # ready in the stop bit's last cycle too, so that frames follow back to back
        m.d.comb += [self.tx.eq(frame[0]),
                     self.data.ready.eq((bits_left == 0) | ((bits_left == 1) & (timer == 0)))]
        with m.If(self.data.valid & self.data.ready):
            m.d.sync += [frame.eq(self.data.payload << 1), bits_left.eq(10),
                         timer.eq(self._divisor - 1)]
        with m.Elif(bits_left != 0):
            with m.If(timer == 0):
                m.d.sync += [frame.eq((frame >> 1) | (1 << 8)), bits_left.eq(bits_left - 1),
                             timer.eq(self._divisor - 1)]
            with m.Else():
                m.d.sync += timer.eq(timer - 1)
        return m


class UartRx(wiring.Component):
    """Receives bytes from ``rx`` (already synchronised to the clock domain).

    A falling edge starts a frame; the start bit is checked again half a bit later (a glitch
    shorter than that is ignored), then each bit is sampled in its middle. A stop bit that reads
    0 (a framing error or a line break) drops the byte and pulses ``framing_error``; the
    receiver then waits for the line to return to 1 before it looks for the next start bit.
    A byte that arrives while the previous one is still held on ``data`` is dropped and
    pulses ``overrun``.

    From any state, once ``rx`` has been 1 for a frame time (10 bit periods), the receiver is idle:
    the next falling edge starts a frame (proved for the ``formal`` platform: :mod:`sim.proofs`).

    Members
    -------
    rx : In(1)
    data : Out(stream.Signature(8))
    framing_error, overrun : Out(1)
        One-cycle pulses.
    """

    def __init__(self, divisor):
        self._divisor = _check_divisor(divisor)
        super().__init__({"rx": In(1, init=1), "data": Out(stream.Signature(8)),
                          "framing_error": Out(1), "overrun": Out(1)})

    def elaborate(self, platform):
        m = Module()
        divisor = self._divisor
        timer = Signal(range(divisor))
        shift = Signal(8)
        bit = Signal(3)
        with m.If(self.data.valid & self.data.ready):
            m.d.sync += self.data.valid.eq(0)

        with m.FSM() as fsm:
            with m.State("IDLE"):
                with m.If(~self.rx):
                    m.d.sync += timer.eq(divisor // 2 - 1)
                    m.next = "START"
            with m.State("START"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Elif(self.rx):
                    m.next = "IDLE"           # a glitch, not a start bit
                with m.Else():
                    m.d.sync += [timer.eq(divisor - 1), bit.eq(0)]
                    m.next = "DATA"
            with m.State("DATA"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Else():
                    m.d.sync += [shift.eq((shift >> 1) | (self.rx << 7)), bit.eq(bit + 1),
                                 timer.eq(divisor - 1)]
                    with m.If(bit == 7):
                        m.next = "STOP"
            with m.State("STOP"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Elif(~self.rx):
                    m.d.comb += self.framing_error.eq(1)
                    m.next = "BREAK"
                with m.Else():
                    with m.If(self.data.valid & ~self.data.ready):
                        m.d.comb += self.overrun.eq(1)
                    with m.Else():
                        m.d.sync += [self.data.payload.eq(shift), self.data.valid.eq(1)]
                    m.next = "IDLE"
            with m.State("BREAK"):
                with m.If(self.rx):
                    m.next = "IDLE"
        if platform == "formal":
            self._properties(m, fsm, timer, bit)
        return m

    def _properties(self, m, fsm, timer, bit):
        """Idle after a frame time of 1s on the line, from any state; the ``data`` stream's rules."""
        divisor, frame = self._divisor, 10 * self._divisor
        states = ("IDLE", "START", "DATA", "STOP", "BREAK")
        m.d.comb += [Assert(timer < divisor), Assert(Cat(*(fsm.ongoing(state) for state in states)).any())]
        # cycles the line has been 1 (up to a frame time), and the cycles the receiver still needs
        # to reach IDLE if it stays 1: their sum never exceeds a frame time (an inductive bound)
        high = Signal(range(frame + 1))
        m.d.sync += high.eq(Mux(self.rx, Mux(high == frame, frame, high + 1), 0))
        to_idle = Signal(range(frame + 1))
        with m.Switch(Cat(*(fsm.ongoing(state) for state in states))):
            for index, value in enumerate([0, timer + 1, timer + 1 + (7 - bit) * divisor + divisor, timer + 1, 1]):
                with m.Case(1 << index):
                    m.d.comb += to_idle.eq(value)
        m.d.comb += Assert(high + to_idle <= frame)
        with m.If(high == frame):
            m.d.comb += Assert(fsm.ongoing("IDLE"))
        # a byte held on `data` stays, unchanged, until it is taken
        waited, held = Signal(), Signal(8)
        m.d.sync += [waited.eq(self.data.valid & ~self.data.ready), held.eq(self.data.payload)]
        with m.If(waited):
            m.d.comb += [Assert(self.data.valid), Assert(self.data.payload == held)]
        m.d.comb += [Cover(self.data.valid), Cover(self.framing_error), Cover(self.overrun)]
