"""The link's result queue (:class:`hw.sender.ResultQueue`) against a Python list: random pushes, pops
and truncations that keep the oldest entries."""

import pytest

from hw.sender import ResultQueue


@pytest.mark.parametrize("depth", [1, 4, 16])
def test_the_queue_is_a_fifo_that_truncates_to_its_oldest(simulate, depth):
    dut = ResultQueue(depth)

    async def bench(ctx, rng):
        model, value = [], 0
        for _ in range(3000):
            assert ctx.get(dut.level) == len(model)
            assert ctx.get(dut.w.ready) == (len(model) < depth) and ctx.get(dut.r.valid) == bool(model)
            if model:
                assert ctx.get(dut.r.payload) == model[0]
            truncate = rng.random() < 0.03
            push, pop = bool(rng.random() < 0.5), bool(rng.random() < 0.4) and not truncate
            keep = int(rng.integers(0, len(model) + 1))
            ctx.set(dut.w.valid, push)
            ctx.set(dut.w.payload, value)
            ctx.set(dut.r.ready, pop)
            ctx.set(dut.truncate, truncate)
            ctx.set(dut.keep, keep)
            accepted = push and len(model) < depth and not truncate
            taken = pop and bool(model)
            await ctx.tick()
            if truncate:
                del model[keep:]             # the write of that cycle is dropped too
            else:
                if taken:
                    model.pop(0)
                if accepted:
                    model.append(value)
            value = (value + 1) % 256
        ctx.set(dut.w.valid, 0)

    simulate(dut, bench, cycles=4000)
