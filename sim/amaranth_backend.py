"""The Amaranth-simulator back end: runs a :class:`sim.stimulus.RunSpec` on the engine."""

import time

from amaranth.sim import Simulator

from hw.engine import Engine
from model.errors import SimulationTimeout

from .stimulus import RunRecord

CLOCK_PERIOD = 1e-8  # 100 MHz nominal; only the cycle count matters


def _build(engine, spec, record, on_result):
    sim = Simulator(engine)
    sim.add_clock(CLOCK_PERIOD)
    pixels, results = engine.pixels, engine.results

    async def producer(ctx):
        beat, offering, cycle = 0, False, 0
        while beat < len(spec.beats):
            if not offering and spec.valid_pattern[cycle % len(spec.valid_pattern)]:
                ctx.set(pixels.payload.as_value(), spec.beats[beat])
                ctx.set(pixels.valid, 1)
                offering = True
            _, _, ready = await ctx.tick().sample(pixels.ready)
            if offering and ready:
                record.input_cycles.append(cycle)
                beat, offering = beat + 1, False
                ctx.set(pixels.valid, 0)
            cycle += 1

    async def consumer(ctx):
        cycle = 0
        while len(record.outputs) < spec.frames:
            if cycle >= spec.max_cycles:
                raise SimulationTimeout(len(record.outputs), spec.frames, spec.max_cycles)
            ready = spec.ready_pattern[cycle % len(spec.ready_pattern)]
            ctx.set(results.ready, ready)
            _, _, valid, payload = await ctx.tick().sample(results.valid, results.payload.as_value())
            if valid and ready:
                record.outputs.append((cycle, payload))
                on_result()
            cycle += 1

    sim.add_testbench(producer, background=True)
    sim.add_testbench(consumer)
    return sim


def run_amaranth(compiled, spec, *, vcd_path=None, on_result=lambda: None):
    """Simulate ``spec`` on the engine elaborated from ``compiled``; return a :class:`RunRecord`.

    ``vcd_path`` (a ``str``) writes a VCD trace; ``on_result`` is called after each result
    (for progress bars).
    """
    record = RunRecord([], [])
    sim = _build(Engine(compiled), spec, record, on_result)
    start = time.perf_counter()
    if vcd_path is None:
        sim.run()
    else:
        with sim.write_vcd(str(vcd_path)):
            sim.run()
    record.seconds = time.perf_counter() - start
    return record
