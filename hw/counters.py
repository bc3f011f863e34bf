"""The board's STATUS counters (:data:`layout.protocol.COUNTERS`) and the copy a STATUS answers with."""

from amaranth.hdl import Module, Signal
from amaranth.lib import data, wiring
from amaranth.lib.memory import WritePort
from amaranth.lib.wiring import In, Out


class CounterBank(wiring.Component):
    """Counters of one-cycle events (registers with carry chains: on iCE40 one logic cell a bit),
    and their copy into a byte-wide memory on request (the STATUS snapshot).

    A copy writes the counters' bytes in STATUS payload order (``COUNTERS``' order, each counter
    little-endian) to ``copy`` addresses ``0 .. bytes - 1``, one a cycle, in the cycles after the
    request; a counter's later bytes are those of the cycle its first byte was copied, so no
    counter is torn by a carry. Events in those few cycles may or may not be in the copy (the
    link takes no byte of a later request meanwhile).

    Parameters
    ----------
    counters : tuple of (name, bytes)
        :data:`layout.protocol.COUNTERS`.

    Members
    -------
    events : In(StructLayout({name: 1}))
        One-cycle pulses, one per counter, counted two cycles later (registered first).
    clear : In(1)
        Sets every counter to 0 in the next cycle (an event counted then is dropped with the rest),
        or, during a copy, once the copy is done.
    snapshot : In(1)
        Pulse, only while ``snapshot_ready``: copy the counters.
    snapshot_ready : Out(1)
        No copy is under way: the last copy is whole.
    copy : Out(WritePort.Signature(addr_width, shape=8).flip())
        The copy's writes.
    """

    def __init__(self, counters):
        self._counters = tuple(counters)
        self._bytes = sum(n for _, n in counters)
        super().__init__({
            "events": In(data.StructLayout({name: 1 for name, _ in counters})),
            "clear": In(1),
            "snapshot": In(1),
            "snapshot_ready": Out(1),
            "copy": Out(WritePort.Signature(addr_width=max(self._bytes - 1, 1).bit_length(), shape=8).flip()),
        })

    def elaborate(self, platform):
        m = Module()
        copying = Signal()
        # a clear is done from a register, the cycle after it is asked for (its fan-out is every
        # counter bit), or once a copy under way is done: the copy is of before it
        clear_waiting = Signal()
        clearing = clear_waiting & ~copying
        with m.If(clearing):
            m.d.sync += clear_waiting.eq(0)
        with m.If(self.clear):
            m.d.sync += clear_waiting.eq(1)
        # the events are counted from a register, a cycle late: the logic that decides them stays
        # off the counters' carry chains
        events = Signal.like(self.events)
        m.d.sync += events.eq(self.events)
        live = []
        for name, size in self._counters:
            counter = Signal(8 * size, name=f"count_{name}")
            with m.If(clearing):
                m.d.sync += counter.eq(0)
            with m.Elif(events[name]):
                m.d.sync += counter.eq(counter + 1)
            live.append(counter)

        index = Signal(range(self._bytes))
        # the bytes after a counter's first, as they were when its first byte was copied
        held = Signal(8 * max(max(size for _, size in self._counters) - 1, 1))
        first = 0
        for counter, (_, size) in zip(live, self._counters):
            for k in range(size):
                with m.If(index == first + k):
                    if k == 0:
                        m.d.comb += self.copy.data.eq(counter[:8])
                        if size > 1:
                            m.d.sync += held.eq(counter[8:])
                    else:
                        m.d.comb += self.copy.data.eq(held.word_select(k - 1, 8))
            first += size
        m.d.comb += [self.copy.addr.eq(index), self.copy.en.eq(copying), self.snapshot_ready.eq(~copying)]
        with m.If(self.snapshot):
            m.d.sync += [copying.eq(1), index.eq(0)]
        with m.If(copying):
            m.d.sync += index.eq(index + 1)
            with m.If(index == self._bytes - 1):
                m.d.sync += copying.eq(0)
        return m
