"""A back-end-neutral description of one engine run: what goes in, on which cycles, what comes out.

Any simulation back end (Amaranth's simulator here, a compiled one later) reproduces a run
exactly by following these rules, cycle ``c = 0, 1, 2, ...`` counting rising clock edges from
the start (reset not asserted):

* Producer (``pixels`` stream): it holds beat ``n`` (``beats[n]``, the raw payload bits). When it
  is not offering and ``valid_pattern[c % len(valid_pattern)]`` is 1, it starts offering at
  cycle ``c`` (``valid = 1``, payload set) and keeps offering until the edge where ``ready`` is
  1; that edge transfers the beat (recorded as ``c``), and the next beat may start at ``c + 1``.
* Consumer (``results`` stream): ``ready = ready_pattern[c % len(ready_pattern)]`` during cycle
  ``c``; an edge with ``valid`` and ``ready`` both 1 records ``(c, payload bits)``.
* The run ends after the edge that transfers the last expected result; a back end fails the
  run if that has not happened after ``max_cycles`` cycles.
"""

from dataclasses import dataclass

import numpy as np

from hw.engine import result_layout

PATTERN_LENGTH = 4096


@dataclass(frozen=True)
class RunSpec:
    """Inputs and handshake patterns of one run (see the module docstring for the rules)."""

    beats: tuple           # int payload per input transfer, frames back to back
    frames: int
    valid_pattern: tuple   # 0/1 per cycle, repeated
    ready_pattern: tuple   # 0/1 per cycle, repeated
    max_cycles: int


@dataclass
class RunRecord:
    """What a back end observed: input transfer cycles, ``(cycle, payload)`` per result, and the
    wall-clock seconds the simulation itself took (not building it)."""

    input_cycles: list
    outputs: list
    seconds: float = 0.0


def frame_beats(pixels, pixels_per_beat):
    """The input beats of one frame: pixel ``i`` in byte ``i % K`` of beat ``i // K``, zero-padded."""
    pixels = np.asarray(pixels, dtype=np.uint8)
    padded = np.zeros(-(-len(pixels) // pixels_per_beat) * pixels_per_beat, dtype=np.uint8)
    padded[:len(pixels)] = pixels
    return [int.from_bytes(beat.tobytes(), "little") for beat in padded.reshape(-1, pixels_per_beat)]


def handshake_pattern(rng, probability):
    """A pattern that is 0 with ``probability`` on each cycle (all ones for probability 0)."""
    if probability <= 0:
        return (1,)
    return tuple(int(v) for v in rng.random(PATTERN_LENGTH) >= probability)


def make_run_spec(compiled, images, *, seed=0, input_gaps=0.0, output_stalls=0.0):
    """Describe a run of ``images`` (``(B, input_size)`` uint8) through ``compiled``'s engine.

    ``input_gaps`` and ``output_stalls`` are the probabilities that the producer withholds a
    beat, or the consumer is not ready, on a given cycle; the patterns come from ``seed``.
    The cycle budget allows for the worst case of both patterns plus a generous margin.
    """
    rng = np.random.default_rng(seed)
    beats = [beat for image in images for beat in frame_beats(image, compiled.params.pixels_per_beat)]
    valid_pattern = handshake_pattern(rng, input_gaps)
    ready_pattern = handshake_pattern(rng, output_stalls)
    slowdown = 1 / max(0.05, 1 - max(input_gaps, output_stalls))
    per_frame = compiled.latency + compiled.load_cycles
    max_cycles = int(slowdown * 2 * per_frame * (len(images) + 1)) + 1000
    return RunSpec(tuple(beats), len(images), valid_pattern, ready_pattern, max_cycles)


def decode_result(payload, params):
    """Split a result payload (an int) into ``(cls, scores)`` with :func:`hw.engine.result_layout`."""
    result = result_layout(params).from_bits(payload)
    return result.cls, list(result.scores)
