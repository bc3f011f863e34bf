"""The board's STATUS counters (:data:`layout.protocol.COUNTERS`) and the copy a STATUS answers with."""

from amaranth.hdl import Cat, Module, Mux, Signal
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
    end, one byte a cycle (read, then written back two cycles later): a counter's events wait in a
    small count (:data:`PENDING_BITS` bits) until the sweep reaches the counter's first byte, where
    they are added, the carry rippling through its later bytes in the next cycles. A sweep is a
    COUNT sweep, or, when asked for, a COPY sweep (each counter's value at the snapshot, to
    ``copy``, counters unchanged) or a CLEAR sweep (zeros written). While a copy or a clear waits
    or runs, events are kept waiting (the counters hold still); a copy asked for before a clear is
    made first.

    Contract: snapshots and clears at least ``3 * bytes + 4`` cycles apart, and at most
    ``2**PENDING_BITS - 1`` events of one counter in any ``4 * bytes + 4`` cycles (the longest a
    counter's events then wait: the end of a sweep, a copy or a clear, a sweep), where ``bytes``
    is the counters' total. The link's STATUS and RESET requests are at least 7 bytes apart, its
    events at most one per received byte (at least 50 cycles apart) except ``frames``, whose
    bursts are bounded by the frames the link holds.

    Parameters
    ----------
    counters : tuple of (name, bytes)
        :data:`layout.protocol.COUNTERS`: three bytes in all at least.

    Members
    -------
    events : In(StructLayout({name: 1}))
        One-cycle pulses, one per counter.
    clear : In(1)
        Sets every counter to 0: the events up to this cycle's are dropped, later ones kept.
    snapshot : In(1)
        Pulse, only while ``snapshot_ready``: copy the counters with the events up to this
        cycle's (never in the same cycle as ``clear``).
    snapshot_ready : Out(1)
        No copy waits or is under way: the last copy is whole.
    copy : Out(WritePort.Signature(addr_width, shape=8).flip())
        The copy's writes, byte ``b`` to address ``b``, one a cycle (from registers: a byte's data is
        its value plus its waiting events, one adder after them).
    """

    def __init__(self, counters):
        self._counters = tuple(counters)
        self._bytes = sum(n for _, n in counters)
        if self._bytes < 3 or any(n < 1 for _, n in counters):
            raise ValueError(f"the counters must be one byte each and three bytes in all at least, not {counters!r}")
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
        # a byte goes through three stages: its read (`index`), its data and addend into registers
        # (`fetched`), their sum written back and offered to `copy` (`summed`); the write of a byte
        # lands two cycles after its read, before the next sweep reads it (three bytes at least)
        read, write = storage.read_port(transparent_for=()), storage.write_port()

        # the events, the clear and the snapshot from registers, a cycle late (their logic stays off
        # the bank's paths; the clear's fan-out is every waiting count)
        events, clear, snapshot = Signal.like(self.events), Signal(), Signal()
        m.d.sync += [events.eq(self.events), clear.eq(self.clear), snapshot.eq(self.snapshot)]

        copy_waiting, clear_waiting = Signal(), Signal()
        copy_of_zeros = Signal()       # the copy was asked for after a clear not yet made
        index = Signal(range(size))    # the byte read in this cycle
        sweep = Signal(_Sweep)         # the sweep `index` belongs to
        fetched, fetched_sweep = Signal(range(size)), Signal(_Sweep)     # the byte whose data is here
        summed, summed_sweep = Signal(range(size)), Signal(_Sweep)       # the byte written now
        data, addend, first = Signal(8), Signal(PENDING_BITS), Signal()  # the fetched byte's, registered
        carry = Signal()               # out of the byte before, in the same counter
        m.d.sync += [fetched.eq(index), fetched_sweep.eq(sweep), summed.eq(fetched), summed_sweep.eq(fetched_sweep),
                     data.eq(read.data), index.eq(Mux(index == size - 1, 0, index + 1))]
        with m.If(index == size - 1):
            m.d.sync += sweep.eq(Mux(copy_waiting, _Sweep.COPY, Mux(clear_waiting, _Sweep.CLEAR, _Sweep.COUNT)))
            with m.If(copy_waiting):
                m.d.sync += copy_waiting.eq(0)
            with m.Elif(clear_waiting):
                m.d.sync += clear_waiting.eq(0)
        # the counters hold still from a copy's or a clear's request to the end of its sweep
        holding = [kind == stage for kind in (_Sweep.COPY, _Sweep.CLEAR) for stage in (sweep, fetched_sweep, summed_sweep)]
        frozen = copy_waiting | clear_waiting | Cat(*holding).any()

        base = 0
        for name, n in self._counters:
            pending = Signal(PENDING_BITS, name=f"pending_{name}")    # events not yet in the memory
            at_copy = Signal(PENDING_BITS, name=f"copied_{name}")     # those of them before the snapshot
            taken = (fetched == base) & (fetched_sweep == _Sweep.COUNT) & ~frozen
            with m.If(fetched == base):
                m.d.sync += addend.eq(Mux(fetched_sweep == _Sweep.COPY, at_copy, Mux(taken, pending, 0)))
            new_pending = Mux(taken, 0, pending) + events[name]
            m.d.sync += pending.eq(Mux(clear, 0, new_pending))
            with m.If(snapshot):
                m.d.sync += at_copy.eq(new_pending)
            base += n
        firsts = [sum(n for _, n in self._counters[:k]) for k in range(len(self._counters))]
        m.d.sync += first.eq(0)
        with m.Switch(fetched):
            with m.Case(*firsts):
                m.d.sync += first.eq(1)
        total = Signal(9)
        m.d.comb += [
            read.addr.eq(index),
            total.eq(Mux(copy_of_zeros & (summed_sweep == _Sweep.COPY), 0, data) + Mux(first, addend, carry)),
            write.addr.eq(summed),
            write.data.eq(Mux(summed_sweep == _Sweep.CLEAR, 0, total[:8])),
            write.en.eq((summed_sweep == _Sweep.COUNT) | (summed_sweep == _Sweep.CLEAR)),
            self.copy.addr.eq(summed),
            self.copy.data.eq(total[:8]),
            self.copy.en.eq(summed_sweep == _Sweep.COPY),
            self.snapshot_ready.eq(~snapshot & ~copy_waiting & ~Cat(*holding[:3]).any()),
        ]
        m.d.sync += carry.eq(total[8])

        with m.If(snapshot):
            m.d.sync += [copy_waiting.eq(1), copy_of_zeros.eq(clear_waiting)]
        with m.If(clear):
            m.d.sync += clear_waiting.eq(1)
        return m
