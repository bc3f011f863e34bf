"""The STATUS counters and their copy (:class:`hw.counters.CounterBank`) against a count kept in Python:
random events, clears and copies."""


import pytest

from hw.counters import CounterBank
from layout.protocol import COUNTERS

SMALL = (("a", 4), ("b", 2), ("c", 2))


async def take_snapshot(ctx, dut, size):
    """Request a copy and return the bytes it writes, by address."""
    while not ctx.get(dut.snapshot_ready):
        await ctx.tick()
    ctx.set(dut.snapshot, 1)
    await ctx.tick()
    ctx.set(dut.snapshot, 0)
    written = {}
    while not ctx.get(dut.snapshot_ready):
        if ctx.get(dut.copy.en):
            written[ctx.get(dut.copy.addr)] = ctx.get(dut.copy.data)
        await ctx.tick()
    assert sorted(written) == list(range(size))
    return bytes(written[a] for a in range(size))


def as_bytes(counters, counts):
    return b"".join((counts[name] % (1 << (8 * size))).to_bytes(size, "little") for name, size in counters)


@pytest.mark.parametrize("counters, events", [(SMALL, 600), (COUNTERS, 300)])
def test_the_bank_counts_every_event_and_copies_them(simulate, counters, events):
    dut = CounterBank(counters)
    size = sum(n for _, n in counters)
    names = [name for name, _ in counters]

    async def bench(ctx, rng):
        counts = dict.fromkeys(names, 0)
        for burst in range(6):
            for _ in range(events // 6):      # events on random cycles
                for name in names:
                    fire = bool(rng.random() < 0.5)
                    ctx.set(dut.events[name], fire)
                    counts[name] += fire
                await ctx.tick()
            for name in names:
                ctx.set(dut.events[name], 0)
            if burst == 3:       # a clear: everything so far is gone
                ctx.set(dut.clear, 1)
                await ctx.tick()
                ctx.set(dut.clear, 0)
                counts = dict.fromkeys(names, 0)
            assert await take_snapshot(ctx, dut, size) == as_bytes(counters, counts), f"burst {burst}"

    simulate(dut, bench, cycles=4 * events + 2000)


def test_a_clear_during_a_copy_waits_for_it(simulate):
    dut = CounterBank(SMALL)

    async def bench(ctx):
        for _ in range(5):
            ctx.set(dut.events.b, 1)
            await ctx.tick()
        ctx.set(dut.events.b, 0)
        ctx.set(dut.snapshot, 1)
        await ctx.tick()
        ctx.set(dut.snapshot, 0)
        ctx.set(dut.clear, 1)             # asked for in the copy's first cycle: not in the copy
        await ctx.tick()
        ctx.set(dut.clear, 0)
        while not ctx.get(dut.snapshot_ready):
            assert not ctx.get(dut.copy.en) or ctx.get(dut.copy.addr) != 4 or ctx.get(dut.copy.data) == 5
            await ctx.tick()
        await ctx.tick()                  # the clear, which waited for the copy
        for _ in range(40):
            ctx.set(dut.events.c, 1)
            await ctx.tick()
        ctx.set(dut.events.c, 0)
        assert await take_snapshot(ctx, dut, 8) == bytes([0, 0, 0, 0, 0, 0, 40, 0])

    simulate(dut, bench, cycles=400)


def test_a_counter_is_copied_from_one_cycle(simulate):
    """An event every cycle while counter b (2 bytes) steps from 0x00ff to 0x0100: its copy is one value it
    had, never its low byte of one cycle with its high byte of another."""
    dut = CounterBank(SMALL)

    async def bench(ctx):
        ctx.set(dut.events.b, 1)
        await ctx.tick().repeat(251)
        copied = await take_snapshot(ctx, dut, 8)       # copied while the events go on
        # b's low byte (address 4) is copied at 0xff, on the cycle before the carry; its high byte a
        # cycle later, when b is 0x0100: a torn copy would read 0x01ff
        assert int.from_bytes(copied[4:6], "little") == 0x00ff

    simulate(dut, bench, cycles=400)


def test_the_copy_port_is_as_wide_as_the_payload():
    assert len(CounterBank(COUNTERS).copy.addr) == (sum(n for _, n in COUNTERS) - 1).bit_length()
