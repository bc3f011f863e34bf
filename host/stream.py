"""Classify images on a board over the link and check every answer against the golden model: what
`bnn stream` and the demo run."""

import time

import numpy as np

from host.board import compile_for_board
from host.errors import LinkError
from host.link import counters_delta
from host.payloads import input_frame
from layout.images import model_id
from layout.protocol import FRAMES_IN_FLIGHT, frame_bytes, link_bound_fps
from model.golden import infer


def ensure_model(link, model, *, progress=None):
    """Identify the board and load ``model`` unless the board already holds it.

    Returns ``(identity, compiled, loaded)``: the board's identity afterwards, the model laid out for
    the board, and ``None`` or ``{"bytes": n, "seconds": s}`` for a load. ``progress(done, total)``
    follows the load's bytes.
    """
    identity = link.identify()
    compiled = compile_for_board(model, identity)
    if identity.model_loaded and identity.model_id == model_id(compiled):
        return identity, compiled, None
    start = time.perf_counter()
    sizes = [0]

    def count(done, total):
        sizes[0] = total
        if progress is not None:
            progress(done, total)
    identity = link.load(compiled, identity, progress=count)
    return identity, compiled, {"bytes": sizes[0], "seconds": time.perf_counter() - start}


def check_frames_per_request(compiled, identity, frames_per_request):
    """Refuse requests of more than FRAMES_IN_FLIGHT frames on a board whose engine computes a
    frame more slowly than the serial line carries one: the board would have to stall the line
    (it has no flow control) and bytes would be lost."""
    line_cycles = frame_bytes(identity.input_bits, compiled.image.input_size) * 10 * identity.clock_hz / identity.baud
    if frames_per_request > FRAMES_IN_FLIGHT and compiled.cycles_per_frame > line_cycles:
        raise LinkError(f"{frames_per_request} frames per request need an engine faster than the line: this "
                        f"one takes {compiled.cycles_per_frame} cycles per frame, the line {line_cycles:.0f}; "
                        f"use at most {FRAMES_IN_FLIGHT}")


def percentiles_ms(latencies):
    if not latencies:
        return {"p50": None, "p95": None, "p99": None}
    p50, p95, p99 = np.percentile(np.asarray(latencies) * 1e3, [50, 95, 99])
    return {"p50": float(p50), "p95": float(p95), "p99": float(p99)}


def stream_images(link, model, images, labels, *, frames_per_request=1, progress=None, load_progress=None,
                  board_cycles=None):
    """Load ``model`` if needed (:func:`ensure_model`), classify ``images`` on the board with
    several frames in flight, and compare every answer with the golden model.

    Returns a JSON-ready report: accuracy, mismatches with the golden model, failed frames,
    frames/s (wall clock) against the link's bound, latency percentiles, the link's retries and
    errors, and the board's counters before and after. ``progress()`` is called once per answer.
    ``board_cycles()``, if given, reads a simulated board's clock cycle count: the report then holds
    ``board_cycles``, the cycles from just before the first INFER request to the last answer (the
    span of ``seconds``, without the load and the STATUS requests around it).
    """
    identity, compiled, loaded = ensure_model(link, model, progress=load_progress)
    check_frames_per_request(compiled, identity, frames_per_request)
    expected = infer(model, images).classes
    frames = [input_frame(model, image) for image in images]
    answers = np.full(len(images), -1, dtype=np.int64)   # -1: failed
    before = link.status()
    start_cycles = None if board_cycles is None else board_cycles()
    start = time.perf_counter()
    for index, answer in link.infer(frames, frames_per_request=frames_per_request,
                                    reload=lambda: link.load(compiled, identity)):
        answers[index] = -1 if answer is None else answer
        if progress is not None:
            progress()
    seconds = time.perf_counter() - start
    cycles = None if board_cycles is None else {"board_cycles": board_cycles() - start_cycles}
    after = link.status()

    failed = answers < 0
    mismatched = np.flatnonzero(~failed & (answers != expected))
    correct = int(np.sum(answers == np.asarray(labels)))
    answered = int(np.sum(~failed))
    bound = link_bound_fps(identity.baud, frame_bytes(model.input.bits, model.input.size), frames_per_request)
    fps = answered / seconds if seconds > 0 else 0.0
    return {
        "identity": identity, "loaded": loaded,
        "frames": len(frames), "answered": answered, "correct": correct,
        "accuracy": correct / len(frames) if len(frames) else 0.0,
        "mismatches": len(mismatched), "mismatched_frames": mismatched[:10].tolist(),
        "failed": int(failed.sum()), "failed_frames": np.flatnonzero(failed)[:10].tolist(),
        "seconds": seconds, "frames_per_second": fps, "frames_per_request": frames_per_request,
        "link_bound_frames_per_second": bound, "link_fraction": fps / bound,
        "latency_ms": percentiles_ms(link.stats.latencies),
        **link.stats.as_dict(),
        "counters": {"before": before, "after": after, "delta": counters_delta(before, after)},
        **(cycles or {}),
    }
