"""The link's byte-to-beat packer (its other parts are in tests/hw/test_link.py)."""

import numpy as np
import pytest

from hw.pixels import PixelPacker
from sim.stimulus import frame_beats
from tests.support import get, put


@pytest.mark.parametrize("per_beat, size", [(8, 20), (4, 8), (1, 3), (8, 5)])
def test_packer_groups_bytes_into_the_engines_beats(simulate, per_beat, size):
    rng = np.random.default_rng(size)
    frames = rng.integers(0, 256, size=(3, size), dtype=np.uint8)
    dut = PixelPacker(per_beat)
    expected = [beat for frame in frames for beat in frame_beats(frame, per_beat)]
    last_lanes = size - (len(frame_beats(frames[0], per_beat)) - 1) * per_beat

    async def producer(ctx):
        for frame in frames:
            for n, byte in enumerate(frame):
                await put(ctx, dut.bytes, {"data": int(byte), "last": int(n == size - 1)})

    async def consumer(ctx):
        for n, want in enumerate(expected):
            beat = await get(ctx, dut.beats)
            lanes = per_beat if (n + 1) % (len(expected) // len(frames)) else last_lanes
            got = sum(int(beat[i]) << (8 * i) for i in range(lanes))
            assert got == want & ((1 << (8 * lanes)) - 1), f"beat {n}"  # lanes past the frame: don't care

    simulate(dut, consumer, background=[producer], cycles=20 * len(expected) + 100)
