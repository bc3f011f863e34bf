"""The UART against a bit-level reference: 8N1, LSB first, at several divisors."""

import pytest

from hw.uart import UartRx, UartTx, uart_divisor
from tests.support import get, put


def line_bits(byte, *, stop=1):
    """The 10 bits of one 8N1 frame: start 0, data LSB first, stop."""
    return [0] + [(byte >> i) & 1 for i in range(8)] + [stop]


@pytest.mark.parametrize("divisor", [4, 5, 13])
def test_transmitter_sends_8n1_frames(simulate, divisor):
    dut = UartTx(divisor)
    data = [0x00, 0xff, 0xa5, 0x3c, 0x81]
    expected = [bit for byte in data for bit in line_bits(byte)]

    async def producer(ctx):
        for byte in data:
            await put(ctx, dut.data, byte)

    async def monitor(ctx):
        assert ctx.get(dut.tx) == 1
        while ctx.get(dut.tx):             # idle until the first start bit
            await ctx.tick()
        seen = []
        for _ in range(len(expected)):     # sample each bit in its middle
            await ctx.tick().repeat(divisor // 2)
            seen.append(ctx.get(dut.tx))
            await ctx.tick().repeat(divisor - divisor // 2)
        assert seen == expected

    simulate(dut, monitor, background=[producer], cycles=len(expected) * divisor + 100)


@pytest.mark.parametrize("divisor", [4, 7, 16])
def test_receiver_takes_bytes_and_reports_framing_errors(simulate, divisor):
    dut = UartRx(divisor)
    # a good byte, a byte whose stop bit is 0 (then a line break of 2 bit times), two good bytes
    frames = [(0x5a, 1), (0x33, 0), (0xc3, 1), (0x01, 1)]
    errors = []

    async def line(ctx):
        ctx.set(dut.rx, 1)
        await ctx.tick().repeat(3)
        for byte, stop in frames:
            bits = line_bits(byte, stop=stop) + ([0] * 2 if not stop else []) + [1]
            for bit in bits:
                ctx.set(dut.rx, bit)
                await ctx.tick().repeat(divisor)

    async def watch(ctx):
        async for _, _, error in ctx.tick().sample(dut.framing_error):
            if error:
                errors.append(ctx)

    async def consumer(ctx):
        received = [await get(ctx, dut.data) for _ in range(3)]
        assert received == [0x5a, 0xc3, 0x01]
        assert len(errors) == 1

    simulate(dut, consumer, background=[line, watch], cycles=60 * divisor)


def test_divisor_and_baud_error():
    assert uart_divisor(39.75e6, 3_000_000) == (13, pytest.approx(39.75e6 / 13 / 3e6 - 1))
    with pytest.raises(ValueError, match="at least 4"):
        UartRx(3)
