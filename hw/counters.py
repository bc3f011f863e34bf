"""The board's STATUS counters (:data:`layout.protocol.COUNTERS`) and the copy a STATUS answers with."""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, enum, memory, wiring
from amaranth.lib.memory import WritePort
from amaranth.lib.wiring import In, Out

PENDING_BITS = 3     # events of one counter waiting to be added (at most 7)


class _Sweep(enum.Enum, shape=2):
    NONE = 0        # (power-up: no byte read yet)
    COUNT = 1       # add the waiting events to the counters
    COPY = 2        # write the snapshot to the copy port
    CLEAR = 3       # write 0 to every counter


class CounterBank(wiring.Component):
    """Counters of one-cycle events in a byte-wide block RAM, and their copy on request (the
    STATUS snapshot) into another memory through a write port.

    The counters' bytes are stored in STATUS payload order (``counters``' order, each counter
    little-endian), address ``b`` holding payload byte ``b``. The bank sweeps the memory without
    end, one byte a cycle (read, then written back the next cycle): a counter's events wait in a
    small count (:data:`PENDING_BITS` bits) until the sweep reaches the counter's first byte, where
    they are added, the carry rippling through its later bytes in the next cycles. A sweep is a
    COUNT sweep, or, when asked for, a COPY sweep (each counter's value at the snapshot, to
    ``copy``, counters unchanged) or a CLEAR sweep (zeros written). While a copy or a clear waits
    or runs, events are kept waiting (the counters hold still); a copy asked for before a clear is
    made first.

    Contract: at most ``2**PENDING_BITS - 1`` events of one counter in any ``4 * bytes + 2``
    cycles (the longest a counter waits: the end of a sweep, a copy, a clear, a sweep), where
    ``bytes`` is the counters' total. The link's events come at most one per received byte (at
    least 50 cycles apart) except ``frames``, whose bursts are bounded by the frames the link holds.

    Parameters
    ----------
    counters : tuple of (name, bytes)
        :data:`layout.protocol.COUNTERS`: two bytes in all at least.

    Members
    -------
    events : In(StructLayout({name: 1}))
        One-cycle pulses, one per counter, counted in the next cycle (registered first).
    clear : In(1)
        Sets every counter to 0: the events counted up to this cycle are dropped, those counted
        after it are kept.
    snapshot : In(1)
        Pulse, only while ``snapshot_ready``: copy the counters as they are with the events
        counted up to this cycle (but never in the same cycle as ``clear``).
    snapshot_ready : Out(1)
        No copy waits or is under way: the last copy is whole.
    copy : Out(WritePort.Signature(addr_width, shape=8).flip())
        The copy's writes, byte ``b`` to address ``b``, one a cycle.
    """

    def __init__(self, counters):
        self._counters = tuple(counters)
        self._bytes = sum(n for _, n in counters)
        if self._bytes < 2 or any(n < 1 for _, n in counters):
            raise ValueError(f"the counters must be one byte each and two bytes in all at least, not {counters!r}")
        super().__init__({
            "events": In(data.StructLayout({name: 1 for name, _ in counters})),
            "clear": In(1),
            "snapshot": In(1),
            "snapshot_ready": Out(1),
            "copy": Out(WritePort.Signature(addr_width=max(self._bytes - 1, 1).bit_length(), shape=8).flip()),
        })

    def elaborate(self, platform):
        m = Module()
        size = self._bytes
        m.submodules.storage = storage = memory.Memory(shape=8, depth=size, init=[],
                                                       attrs={"ram_style": "block"})
        # the read of byte `index` and the write of the byte read the cycle before: never one address
        read, write = storage.read_port(transparent_for=()), storage.write_port()

        # the events, counted from a register a cycle late (their logic stays off the adders)
        events = Signal.like(self.events)
        m.d.sync += events.eq(self.events)

        copy_waiting, clear_waiting = Signal(), Signal()
        copy_of_zeros = Signal()       # the copy was asked for after a clear not yet made
        index = Signal(range(size))    # the byte read in this cycle
        sweep = Signal(_Sweep)         # the sweep `index` belongs to
        byte = Signal(range(size))     # the byte read the cycle before: its data is here now
        byte_sweep = Signal(_Sweep)
        carry = Signal()               # out of the byte before, in the same counter
        m.d.sync += [byte.eq(index), byte_sweep.eq(sweep), index.eq(Mux(index == size - 1, 0, index + 1))]
        with m.If(index == size - 1):
            m.d.sync += sweep.eq(Mux(copy_waiting, _Sweep.COPY, Mux(clear_waiting, _Sweep.CLEAR, _Sweep.COUNT)))
            with m.If(copy_waiting):
                m.d.sync += copy_waiting.eq(0)
            with m.Elif(clear_waiting):
                m.d.sync += clear_waiting.eq(0)
        # the counters hold still from a copy's or a clear's request to the end of its sweep
        frozen = copy_waiting | clear_waiting | (sweep == _Sweep.COPY) | (sweep == _Sweep.CLEAR) | (
            byte_sweep == _Sweep.COPY) | (byte_sweep == _Sweep.CLEAR)

        addend = Signal(PENDING_BITS)
        first = 0
        for name, n in self._counters:
            pending = Signal(PENDING_BITS, name=f"pending_{name}")    # events not yet in the memory
            at_copy = Signal(PENDING_BITS, name=f"copied_{name}")     # those of them before the snapshot
            taken = (byte == first) & (byte_sweep == _Sweep.COUNT) & ~frozen
            with m.If(byte == first):
                m.d.comb += addend.eq(Mux(byte_sweep == _Sweep.COPY, at_copy, Mux(taken, pending, 0)))
            new_pending = Mux(taken, 0, pending) + events[name]
            m.d.sync += pending.eq(Mux(self.clear, 0, new_pending))
            with m.If(self.snapshot):
                m.d.sync += at_copy.eq(new_pending)
            first += n
        firsts = [sum(n for _, n in self._counters[:k]) for k in range(len(self._counters))]
        is_first = Signal()
        with m.Switch(byte):
            with m.Case(*firsts):
                m.d.comb += is_first.eq(1)
        base = Mux(copy_of_zeros & (byte_sweep == _Sweep.COPY), 0, read.data)
        total = Signal(9)
        m.d.comb += [
            read.addr.eq(index),
            total.eq(base + Mux(is_first, addend, carry)),
            write.addr.eq(byte),
            write.data.eq(Mux(byte_sweep == _Sweep.CLEAR, 0, total[:8])),
            write.en.eq((byte_sweep == _Sweep.COUNT) | (byte_sweep == _Sweep.CLEAR)),
            self.copy.addr.eq(byte),
            self.copy.data.eq(total[:8]),
            self.copy.en.eq(byte_sweep == _Sweep.COPY),
            self.snapshot_ready.eq(~copy_waiting & (sweep != _Sweep.COPY) & (byte_sweep != _Sweep.COPY)),
        ]
        m.d.sync += carry.eq(total[8])

        with m.If(self.snapshot):
            m.d.sync += [copy_waiting.eq(1), copy_of_zeros.eq(clear_waiting)]
        with m.If(self.clear):
            m.d.sync += clear_waiting.eq(1)
        return m
