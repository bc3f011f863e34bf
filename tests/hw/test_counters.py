"""The STATUS counters and their copy (:class:`hw.counters.CounterBank`) against a count kept in Python:
random events as dense as the bank's contract allows, random clears and snapshots, each copy exact."""

from collections import deque

import pytest

from hw.counters import PENDING_BITS, CounterBank
from layout.protocol import COUNTERS

SMALL = (("a", 2), ("b", 1), ("c", 1))      # one-byte counters wrap after 256 events


def as_bytes(counters, counts):
    return b"".join((counts[name] % (1 << (8 * size))).to_bytes(size, "little") for name, size in counters)


def drive(simulate, counters, schedule, *, cycles, spacing=None):
    """Run the bank with ``schedule(i, rng)`` -> (events, snapshot, clear) for cycle ``i`` (events a
    set of names) within the bank's contract (a snapshot only while ``snapshot_ready``, requests at
    least ``spacing`` cycles apart, default ``3 * bytes + 4``; at most 7 events of a counter in any
    ``4 * bytes + 4`` cycles: the others are not sent) and compare every copy with the counts of
    the events up to its request's cycle."""
    dut = CounterBank(counters)
    size = sum(n for _, n in counters)
    names = [name for name, _ in counters]
    window = 4 * size + 4
    most = (1 << PENDING_BITS) - 1
    spacing = 3 * size + 4 if spacing is None else spacing

    async def bench(ctx, rng):
        counts = dict.fromkeys(names, 0)
        recent = {name: deque() for name in names}     # the cycles of each counter's recent events
        expected, copies, partial = [], [], {}
        last_request = -spacing
        for i in range(cycles):
            events, snapshot, clear = schedule(i, rng)
            if i - last_request < spacing:
                snapshot = clear = False
            snapshot = snapshot and not clear and ctx.get(dut.snapshot_ready)
            if snapshot or clear:
                last_request = i
            for name in names:     # the contract: at most `most` events in any `window` cycles
                while recent[name] and recent[name][0] <= i - window:
                    recent[name].popleft()
                if name in events and len(recent[name]) == most:
                    events = events - {name}
            for name in names:
                fire = name in events
                ctx.set(dut.events[name], fire)
                counts[name] += fire
                if fire:
                    recent[name].append(i)
            if snapshot:     # with this cycle's events
                expected.append(as_bytes(counters, counts))
            if clear:        # this cycle's events too
                counts = dict.fromkeys(names, 0)
            ctx.set(dut.snapshot, snapshot)
            ctx.set(dut.clear, clear)
            if ctx.get(dut.copy.en):
                partial[ctx.get(dut.copy.addr)] = ctx.get(dut.copy.data)
                if len(partial) == size:
                    copies.append(bytes(partial[a] for a in range(size)))
                    partial = {}
            await ctx.tick()
        ctx.set(dut.snapshot, 0)
        ctx.set(dut.clear, 0)
        for name in names:
            ctx.set(dut.events[name], 0)
        for _ in range(4 * window):
            if ctx.get(dut.copy.en):
                partial[ctx.get(dut.copy.addr)] = ctx.get(dut.copy.data)
                if len(partial) == size:
                    copies.append(bytes(partial[a] for a in range(size)))
                    partial = {}
            await ctx.tick()
        assert len(expected) > 3 and copies == expected
        # and the counters themselves, after everything has settled
        ctx.set(dut.snapshot, 1)
        await ctx.tick()
        ctx.set(dut.snapshot, 0)
        final = {}
        for _ in range(4 * window):
            if ctx.get(dut.copy.en):
                final[ctx.get(dut.copy.addr)] = ctx.get(dut.copy.data)
            await ctx.tick()
        assert bytes(final[a] for a in range(size)) == as_bytes(counters, counts)

    simulate(dut, bench, cycles=cycles + 10 * window)


@pytest.mark.parametrize("counters", [SMALL, COUNTERS], ids=["small", "link"])
def test_every_event_is_counted_and_every_copy_is_its_moment(simulate, counters):
    names = [name for name, _ in counters]

    def schedule(i, rng):
        density = [0.02, 0.1, 0.3][i // 500 % 3]          # quiet, busy and saturating phases
        events = {name for name in names if rng.random() < density}
        return events, rng.random() < 0.03, rng.random() < 0.004

    drive(simulate, counters, schedule, cycles=3000)


@pytest.mark.parametrize("gap", [0, 1, 2, 5])
def test_a_clear_just_before_or_after_a_snapshot(simulate, gap):
    """Clears a few cycles before and after snapshots, with events in between: each copy has the
    events up to its request and after the last clear before it."""

    def schedule(i, rng):
        phase = i % 90
        events = {"a", "b"} if phase % 6 == 0 else {"c"} if phase % 7 == 0 else set()
        return events, phase == 40, phase in (40 - gap - 1, 40 + gap + 1)

    drive(simulate, SMALL, schedule, cycles=900, spacing=0)


def test_a_carry_while_copies_are_made(simulate):
    """Counter a (2 bytes) climbs through 0x00ff, 0x01ff, ... with copies asked for all the while: no copy
    holds one byte of a value and the other of the next."""

    def schedule(i, rng):
        return {"a"} if i % 3 else set(), True, False

    drive(simulate, SMALL, schedule, cycles=1500)


def test_the_copy_port_is_as_wide_as_the_payload():
    assert len(CounterBank(COUNTERS).copy.addr) == (sum(n for _, n in COUNTERS) - 1).bit_length()


def test_a_bank_of_two_bytes_is_refused():
    with pytest.raises(ValueError, match="three bytes in all at least"):
        CounterBank((("a", 1), ("b", 1)))
