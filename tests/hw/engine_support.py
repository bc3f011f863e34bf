"""Test support for engine tests: stream images through the engine, compare with the golden model."""

from hw.engine import Engine
from layout.compiler import compile_model
from model.golden import infer
from sim.stimulus import frame_beats
from tests.support import get, put


def check_engine(simulate, model, images, *, pe, simd, tree_stages=0, pixels_per_beat=None,
                 capacity=None, input_gaps=0.3, output_stalls=0.3):
    """Stream ``images`` through the engine with random gaps and stalls; compare with golden."""
    compiled = compile_model(model, pe=pe, simd=simd, tree_stages=tree_stages,
                             pixels_per_beat=pixels_per_beat, capacity=capacity)
    dut = Engine(compiled)
    golden = infer(model, images)
    per_beat = compiled.params.pixels_per_beat

    async def producer(ctx, rng):
        for image in images:
            for beat in frame_beats(image, per_beat):
                if rng.random() < input_gaps:
                    await ctx.tick().repeat(int(rng.integers(1, 4)))
                await put(ctx, dut.pixels, [(beat >> (8 * i)) & 0xff for i in range(per_beat)])

    async def consumer(ctx, rng):
        for frame in range(len(images)):
            if rng.random() < output_stalls:
                await ctx.tick().repeat(int(rng.integers(1, 20)))
            result = await get(ctx, dut.results)
            scores = [result.scores[i] for i in range(model.classes)]
            assert scores == golden.scores[frame].tolist(), f"frame {frame}"
            assert result.cls == golden.classes[frame], f"frame {frame}"

    budget = 3 * len(images) * (compiled.latency + compiled.load_cycles) + 200
    simulate(dut, consumer, background=[producer], cycles=budget)
