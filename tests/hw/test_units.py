"""Unit tests of the engine's arithmetic parts against small NumPy/Python references."""

import numpy as np
import pytest

from hw.argmax import Argmax
from hw.pe import ProcessingElement, ProcessingElementArray
from hw.popcount import PopCount, register_levels


@pytest.mark.parametrize("width, stages", [(1, 0), (1, 2), (7, 0), (8, 1), (33, 2), (64, 3), (64, 6), (5, 4)])
def test_popcount_counts_with_its_latency(simulate, width, stages):
    rng = np.random.default_rng(width * 10 + stages)
    words = [int(v) for v in rng.integers(0, 1 << width, size=40, dtype=np.uint64)] + [0, (1 << width) - 1]
    dut = PopCount(width, stages=stages)
    assert dut.latency == stages

    async def testbench(ctx):
        for cycle in range(len(words) + stages):
            if cycle < len(words):
                ctx.set(dut.bits, words[cycle])
            if cycle >= stages:
                assert ctx.get(dut.count) == bin(words[cycle - stages]).count("1"), f"cycle {cycle}"
            await ctx.tick()

    simulate(dut, testbench, cycles=200)


def test_register_levels_are_spread_over_the_tree():
    assert register_levels(6, 2) == [3, 6]
    assert register_levels(6, 3) == [2, 4, 6]
    assert register_levels(0, 2) == [0, 0]
    assert register_levels(3, 0) == []


def pe_reference(ops, simd):
    """Totals the PE must show for each op, and the accumulator semantics spelled out."""
    mask = (1 << simd) - 1
    acc, totals = 0, []
    for op in ops:
        matches = ~(op["x"] ^ op["w"]) & mask
        total = (op["start"] if op["first"] else acc) + (bin(matches).count("1") << op["shift"])
        if op["valid"]:
            acc = total
        totals.append(total)
    return totals


@pytest.mark.parametrize("simd, stages", [(1, 0), (5, 0), (8, 1), (16, 2), (13, 4)])
def test_pe_accumulates_xnor_and_and_terms(simulate, simd, stages):
    rng = np.random.default_rng(simd + 100 * stages)
    acc_width = 24
    ops = []
    for _ in range(60):
        ops.append({"x": int(rng.integers(1 << simd)), "w": int(rng.integers(1 << simd)),
                    "shift": int(rng.integers(8)),
                    "valid": int(rng.random() < 0.8), "first": int(rng.random() < 0.25),
                    "start": int(rng.integers(-5000, 5000))})
    expected = pe_reference(ops, simd)
    dut = ProcessingElement(simd, acc_width, stages=stages)
    latency, shift_latency = dut.latency, dut.shift_latency
    assert latency == stages and shift_latency == max(stages - 1, 0)  # the last register: the term

    async def testbench(ctx):
        for cycle in range(len(ops) + latency):
            if cycle < len(ops):
                for name in ("x", "w"):
                    ctx.set(getattr(dut, name), ops[cycle][name])
            if 0 <= cycle - shift_latency < len(ops):
                ctx.set(dut.control.shift, ops[cycle - shift_latency]["shift"])
            if cycle >= latency:
                op = ops[cycle - latency]
                for name in ("valid", "first"):
                    ctx.set(getattr(dut.control, name), op[name])
                ctx.set(dut.start, op["start"])
                total = expected[cycle - latency]
                assert ctx.get(dut.total) == total, f"op {cycle - latency}"
                assert ctx.get(dut.fire) == int(total >= 0), f"op {cycle - latency}"
            await ctx.tick()

    simulate(dut, testbench, cycles=200)


def test_pe_rejects_a_narrow_accumulator():
    with pytest.raises(ValueError, match="accumulator width"):
        ProcessingElement(8, 1)


@pytest.mark.parametrize("size", [1, 2, 3, 10, 16])
def test_argmax_picks_the_first_largest_valid_score(simulate, size):
    rng = np.random.default_rng(size)
    dut = Argmax(size, 6)
    cases = [rng.integers(-4, 4, size=size) for _ in range(40)]  # narrow range: many ties
    cases += [np.full(size, -32), np.full(size, 31)]
    counts = [int(rng.integers(1, size + 1)) for _ in cases]
    assert dut.latency == (size - 1).bit_length()

    async def testbench(ctx):
        # a new case every cycle: the index of case k appears latency cycles later
        for cycle in range(len(cases) + dut.latency):
            if cycle < len(cases):
                ctx.set(dut.count, counts[cycle])
                for i, score in enumerate(cases[cycle]):
                    ctx.set(dut.scores[i], int(score))
            k = cycle - dut.latency
            if k >= 0:
                scores, count = cases[k], counts[k]
                assert ctx.get(dut.index) == int(np.argmax(scores[:count])), (list(scores), count)
            await ctx.tick()

    simulate(dut, testbench, cycles=100)


def test_pe_array_shares_the_input_and_splits_the_weights(simulate):
    pe, simd, width, stages = 3, 8, 12, 1
    rng = np.random.default_rng(3)
    dut = ProcessingElementArray(pe, simd, width, stages=stages)
    ops = [{"x": int(rng.integers(1 << simd)), "shift": int(rng.integers(8)), "valid": 1,
            "first": int(i % 3 == 0), "w": [int(v) for v in rng.integers(0, 1 << simd, pe)],
            "start": [int(v) for v in rng.integers(-100, 100, pe)]} for i in range(30)]
    expected = [pe_reference([{**op, "w": op["w"][p], "start": op["start"][p]} for op in ops], simd)
                for p in range(pe)]

    latency, shift_latency = stages, stages - 1  # the last register holds the shifted count

    async def testbench(ctx):
        for cycle in range(len(ops) + latency):
            if cycle < len(ops):
                op = ops[cycle]
                ctx.set(dut.x, op["x"])
                ctx.set(dut.weights, sum(w << (p * simd) for p, w in enumerate(op["w"])))
            if 0 <= cycle - shift_latency < len(ops):
                ctx.set(dut.control.shift, ops[cycle - shift_latency]["shift"])
            if cycle >= latency:
                k = cycle - latency
                op = ops[k]
                for name in ("valid", "first"):
                    ctx.set(getattr(dut.control, name), op[name])
                for p in range(pe):
                    ctx.set(dut.starts[p], op["start"][p])
                for p in range(pe):
                    assert ctx.get(dut.totals[p]) == expected[p][k], f"op {k}, PE {p}"
                    assert ctx.get(dut.fires) >> p & 1 == int(expected[p][k] >= 0), f"op {k}, PE {p}"
            await ctx.tick()

    simulate(dut, testbench, cycles=100)
