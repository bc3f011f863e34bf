"""Test support: the two stream helpers every Amaranth testbench uses, put one payload and get one,
and a ``bnn serve-sim`` process on a free port.

The stream helpers follow ``amaranth.lib.stream`` rules: the producer raises ``valid`` without looking
at ``ready`` and holds the payload until the transfer; a transfer happens at a clock edge where
``valid`` and ``ready`` are both high.
"""

import contextlib
import os
import signal
import subprocess
import sys


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


@contextlib.contextmanager
def serve_sim(*arguments, env=None):
    """``bnn serve-sim ARGUMENTS --listen 127.0.0.1:0`` in a process, once it listens: yields
    ``(url, process)``; stopped with Ctrl-C at the end."""
    process = subprocess.Popen([sys.executable, "-m", "bnn", "serve-sim", *arguments, "--listen", "127.0.0.1:0"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, **(env or {})})
    try:
        line = process.stdout.readline()   # after the CXXRTL build
        assert line.startswith("listening on 127.0.0.1:"), (line, process.stderr.read())
        yield f"socket://{line.split()[-1]}", process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
        process.communicate(timeout=30)
