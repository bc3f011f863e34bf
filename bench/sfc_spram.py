"""The SFC network (784-256-256-256-10, 1-bit input, 334 Kbit of weights) on a simulated iCEBreaker
whose weights live in SPRAM: the board starts with no model, the host loads it over the 3 Mbaud line
and streams frames, every answer checked against the golden model.

The board is `bnn serve-sim`'s (the UP5K's fitting folding with the weights in SPRAM, its default
clock), served on a local TCP socket in a thread; the host is :class:`host.link.Link` with real
pyserial. The model is random (seed 1; the data set does not matter for exactness, and this machine
has no Fashion-MNIST), as are the frames. Load time and frame rate are in simulated board time (the
server's cycles over the clock) and wall time. Writes ``bench/out/sfc_spram.json``.

    .venv/bin/python bench/sfc_spram.py              # about a minute
    .venv/bin/python bench/sfc_spram.py --markdown   # print docs/results.md's line from the JSON
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from bench.results import fingerprint, read, write  # noqa: E402
from host.link import Link  # noqa: E402
from host.payloads import input_frame  # noqa: E402
from host.stream import ensure_model  # noqa: E402
from hw.boards import BOARDS  # noqa: E402
from hw.plan import fitting_folding  # noqa: E402
from layout.protocol import frame_bytes, link_bound_fps  # noqa: E402
from model.golden import infer  # noqa: E402
from model.random_models import random_images, random_model  # noqa: E402
from sim.board import simulated_board  # noqa: E402
from sim.cxxrtl import StreamSimulator  # noqa: E402
from sim.serve import serving_in_background  # noqa: E402

ARCH = [784, 256, 256, 256, 10]
FRAMES = 300
# The code that determines the results (bench/results.py): the gateware and its build plan, the simulated
# board and its server, the host's link, the layouts and the random model.
SOURCES = ["bench/sfc_spram.py", "host", "hw", "layout", "model", "sim"]


def markdown(r):
    return (f"SFC {r['arch']} (1-bit input) on a simulated iCEBreaker, {r['pe']} x {r['simd']}, weights in SPRAM, "
            f"{r['clock_hz'] / 1e6:.0f} MHz, {r['baud']} baud: the board starts with no model; the load "
            f"({r['load_bytes']:,} bytes) takes {r['load_board_seconds']:.2f} s of board time; {r['frames']} "
            f"frames, {r['mismatches']} mismatches with the golden model, {r['failed']} failed, "
            f"{r['board_frames_per_second']:,.0f} frames per second of board time = "
            f"{100 * r['board_frames_per_second'] / r['link_bound_frames_per_second']:.1f}% of the line's bound "
            f"({r['link_bound_frames_per_second']:,.0f}; the engine alone: {r['engine_frames_per_second']:,.0f}).")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--markdown", action="store_true",
                        help="print the line of docs/results.md from the JSON and exit")
    args = parser.parse_args()
    if args.markdown:
        print(markdown(read("sfc_spram")))
        return 0
    stamp = fingerprint(SOURCES)
    board = BOARDS["icebreaker"]
    model = random_model(ARCH, input_bits=1, seed=1)
    pe, simd = fitting_folding(model, board, tree_stages=board.tree_stages)
    simulated = simulated_board(model, board, pe=pe, simd=simd)
    assert simulated.weights_in_spram, "the SFC weights do not fit the UP5K's block RAM"
    images = random_images(FRAMES, ARCH[0], seed=2)
    with StreamSimulator(simulated.compile()) as simulator, \
            serving_in_background(simulator, idle_cycles=simulated.idle_cycles,
                                  quiet_cycles=simulated.quiet_cycles) as (server, _):
        with Link.open(f"socket://{server.address_text}", baud=simulated.baud) as link:
            assert not link.identify().model_loaded
            start_cycles, start = server.stats.cycles, time.perf_counter()
            _, _, loaded = ensure_model(link, model)
            load_cycles, load_seconds = server.stats.cycles - start_cycles, time.perf_counter() - start
            start_cycles, start = server.stats.cycles, time.perf_counter()
            answers = dict(link.infer([input_frame(model, image) for image in images]))
            stream_cycles, stream_seconds = server.stats.cycles - start_cycles, time.perf_counter() - start
    expected = infer(model, images).classes
    failed = [i for i in range(FRAMES) if answers.get(i) is None]
    result = {
        "arch": "-".join(map(str, ARCH)), "pe": pe, "simd": simd, "clock_hz": simulated.clock_hz,
        "baud": simulated.baud, "weights_in_spram": simulated.weights_in_spram,
        "load_bytes": loaded["bytes"], "load_board_seconds": load_cycles / simulated.clock_hz,
        "load_wall_seconds": load_seconds, "frames": FRAMES, "failed": len(failed),
        "mismatches": int(sum(answers[i] != expected[i] for i in range(FRAMES) if i not in failed)),
        "board_frames_per_second": FRAMES * simulated.clock_hz / stream_cycles,
        "wall_frames_per_second": FRAMES / stream_seconds,
        "link_bound_frames_per_second": link_bound_fps(simulated.baud, frame_bytes(1, ARCH[0]), 1),
        "engine_frames_per_second": simulated.clock_hz / simulated.compiled.cycles_per_frame,
        "sources": stamp,
    }
    write("sfc_spram", result)
    print(markdown(result))
    return 0 if result["mismatches"] == 0 and not failed else 1


if __name__ == "__main__":
    sys.exit(main())
