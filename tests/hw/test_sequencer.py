"""The sequencer's command stream against a Python model of the loop nest."""

import pytest

from hw.sequencer import Sequencer
from layout.compiler import compile_model
from model.random_models import random_model

FIELDS = ("first", "last", "plane", "shift", "from_input", "parity", "slice",
          "weight_addr", "start_addr", "group", "out_word", "out_chunk", "last_layer", "frame_end")


def expected_frame(compiled):
    """One frame's commands, cycle by cycle (None = idle), from the loop nest in the docs."""
    params = compiled.params
    chunks = params.simd // params.pe
    cycles, weight_addr, start_addr = [], 0, 0
    descriptors = compiled.image.descriptors
    for k, d in enumerate(descriptors):
        for group in range(d.groups):
            for s in range(d.slices):
                for plane in range(d.planes):
                    last = s == d.slices - 1 and plane == d.planes - 1
                    cycles.append({
                        "first": int(s == 0 and plane == 0), "last": int(last),
                        "plane": plane, "shift": plane if d.bit_serial else 1,
                        "from_input": int(k == 0), "parity": k % 2, "slice": s,
                        "weight_addr": weight_addr, "start_addr": start_addr, "group": group,
                        # the output layer writes scores, not activation bits: it stays at word 0, chunk 0
                        "out_word": 0 if d.last else group // chunks, "out_chunk": 0 if d.last else group % chunks,
                        "last_layer": int(d.last), "frame_end": int(d.last and last and group == d.groups - 1),
                    })
                weight_addr += 1
            start_addr += 1
        cycles += [None] * params.layer_gap
    return cycles


@pytest.mark.parametrize("sizes, input_bits, pe, simd, stages", [
    ([10, 5, 3], 8, 2, 4, 0),
    ([9, 7, 1, 4], 1, 1, 2, 1),
    ([16, 9, 6], 8, 3, 3, 2),
])
def test_sequencer_walks_the_loop_nest_without_bubbles(simulate, sizes, input_bits, pe, simd, stages):
    model = random_model(sizes, input_bits=input_bits, seed=1)
    compiled = compile_model(model, pe=pe, simd=simd, tree_stages=stages)
    dut = Sequencer(compiled.params, compiled.image.descriptors)
    frame = expected_frame(compiled)
    held = 5  # cycles with no frame loaded: nothing may issue

    async def testbench(ctx):
        ctx.set(dut.scores_free, 1)
        for _ in range(held):
            assert not ctx.get(dut.command.valid)
            await ctx.tick()
        ctx.set(dut.frame_ready, 1)
        taken = False  # frame_taken pulses the cycle after layer 0's last command
        for cycle, want in enumerate(frame * 2):
            command = ctx.get(dut.command)
            assert ctx.get(dut.frame_taken) == taken, f"cycle {cycle}"
            if want is None:
                assert not command.valid, f"cycle {cycle}: issued in a layer gap"
            else:
                assert command.valid, f"cycle {cycle}: bubble"
                got = {name: getattr(command, name) for name in FIELDS}
                assert got == want, f"cycle {cycle}"
            groups = compiled.image.descriptors[0].groups
            taken = want is not None and want["from_input"] and want["last"] and want["group"] == groups - 1
            await ctx.tick()

    simulate(dut, testbench, cycles=held + 2 * len(frame) + 10)


def test_sequencer_waits_for_a_loaded_frame_and_free_scores(simulate):
    model = random_model([6, 4, 3], input_bits=1, seed=2)
    compiled = compile_model(model, pe=2, simd=4)
    dut = Sequencer(compiled.params, compiled.image.descriptors)
    layer0 = compiled.image.descriptors[0].cycles

    async def testbench(ctx):
        ctx.set(dut.frame_ready, 1)
        await ctx.tick().repeat(layer0 + compiled.params.layer_gap)
        ctx.set(dut.frame_ready, 0)
        for _ in range(10):  # output layer next, but the scores are still in use
            assert not ctx.get(dut.command.valid)
            await ctx.tick()
        ctx.set(dut.scores_free, 1)
        assert ctx.get(dut.command.valid) and ctx.get(dut.command.last_layer)
        await ctx.tick().repeat(compiled.image.descriptors[1].cycles + compiled.params.layer_gap)
        for _ in range(10):  # back at layer 0, no frame loaded
            assert not ctx.get(dut.command.valid)
            await ctx.tick()

    simulate(dut, testbench, cycles=200)
