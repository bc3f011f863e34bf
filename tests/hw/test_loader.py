"""The input loader writes each frame's bit planes where docs/engine.md says, and hands banks over."""

import numpy as np
import pytest

from hw.loader import InputLoader, input_word_bits
from layout.compiler import compile_model
from layout.rows import input_config
from model.random_models import random_images, random_model
from sim.stimulus import frame_beats
from tests.support import put


def expected_words(compiled, image, bank):
    """``{address: word}`` of one frame: bit ``l`` of (bank, word, plane) = plane of pixel ``w*S + l``."""
    params = compiled.params
    simd, planes = params.simd, compiled.input_planes
    word_bits, plane_bits = input_word_bits(params), (3 if planes == 8 else 0)
    values = image.astype(np.int64) if planes == 8 else (image >= compiled.image.input_threshold).astype(np.int64)
    words = {}
    for w in range(-(-len(image) // simd)):
        lanes = values[w * simd:(w + 1) * simd]
        for p in range(planes):
            address = (bank << (word_bits + plane_bits)) | (w << plane_bits) | p
            words[address] = sum(int((v >> p) & 1) << lane for lane, v in enumerate(lanes))
    return words


@pytest.mark.parametrize("input_bits, size, simd, per_beat", [(8, 20, 8, 4), (1, 21, 16, 4), (8, 5, 8, 8)])
def test_loader_writes_planes_and_alternates_banks(simulate, input_bits, size, simd, per_beat):
    model = random_model([size, 3, 2], input_bits=input_bits, seed=size, input_threshold=100)
    compiled = compile_model(model, pe=1, simd=simd, pixels_per_beat=per_beat)
    dut = InputLoader(compiled.params)
    images = random_images(3, size, seed=size)
    writes = []

    async def producer(ctx):
        for n, image in enumerate(images):
            for beat in frame_beats(image, per_beat):
                await put(ctx, dut.pixels, [(beat >> (8 * i)) & 0xff for i in range(per_beat)])

    async def monitor(ctx):
        async for _, _, enable, address, word in ctx.tick().sample(dut.write.en, dut.write.addr, dut.write.data):
            if enable:
                writes.append((address, word))

    async def engine(ctx):
        ctx.set(dut.config, input_config(compiled.params, compiled.image))
        bank_shift = input_word_bits(compiled.params) + (3 if compiled.input_planes == 8 else 0)
        for n in range(len(images)):
            await ctx.tick().until(dut.frame_ready)
            assert ctx.get(dut.compute_bank) == n % 2
            mine = [(a, w) for a, w in writes if a >> bank_shift == n % 2]
            writes[:] = [(a, w) for a, w in writes if a >> bank_shift != n % 2]
            assert dict(mine) == expected_words(compiled, images[n], n % 2), f"frame {n}"
            assert len(mine) == len(dict(mine)), "a word written twice"
            if n == 0:
                await ctx.tick().repeat(40)  # the loader fills the other bank meanwhile, then waits
                assert ctx.get(dut.pixels.ready) == 0
            ctx.set(dut.frame_taken, 1)
            await ctx.tick()
            ctx.set(dut.frame_taken, 0)

    simulate(dut, engine, background=[producer, monitor], cycles=1000)
