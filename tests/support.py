"""Test support: the two stream helpers every Amaranth testbench uses, put one payload and get one.

Both follow ``amaranth.lib.stream`` rules: the producer raises ``valid`` without looking at
``ready`` and holds the payload until the transfer; a transfer happens at a clock edge where
``valid`` and ``ready`` are both high.
"""


async def put(ctx, stream, payload):
    """Offer ``payload`` on ``stream`` and return after the edge that transfers it."""
    ctx.set(stream.payload, payload)
    ctx.set(stream.valid, 1)
    await ctx.tick().until(stream.ready)
    ctx.set(stream.valid, 0)


async def get(ctx, stream):
    """Accept one payload from ``stream``; return it after the edge that transfers it."""
    ctx.set(stream.ready, 1)
    payload, = await ctx.tick().sample(stream.payload).until(stream.valid)
    ctx.set(stream.ready, 0)
    return payload
