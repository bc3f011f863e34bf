"""Test support: the two stream helpers every Amaranth testbench uses, put one payload and get one,
and a simulated board served on a TCP socket from a thread.

Both stream helpers follow ``amaranth.lib.stream`` rules: the producer raises ``valid`` without
looking at ``ready`` and holds the payload until the transfer; a transfer happens at a clock edge
where ``valid`` and ``ready`` are both high.
"""

import threading
from contextlib import contextmanager


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


@contextmanager
def serving(simulator, *, idle_cycles, **options):
    """A :class:`sim.serve.BoardServer` on a free port of 127.0.0.1, serving ``simulator`` in a
    thread (``options`` go to its ``run``); yields ``(server, stop)`` and checks on the way out that
    the server ends within a second and raised nothing."""
    from sim.serve import BoardServer
    server = BoardServer("127.0.0.1", 0)
    stop = threading.Event()
    failures = []

    def serve():
        try:
            server.run(simulator, idle_cycles=idle_cycles, stop=stop, **options)
        except BaseException as failure:
            failures.append(failure)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server, stop
    finally:
        stop.set()
        thread.join(timeout=1.0)
    assert not thread.is_alive(), "the server did not stop within a second"
    assert not failures, failures
