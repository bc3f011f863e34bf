"""``bnn demo``: the whole journey on the embedded digits set, in about a minute.

The demo is a list of steps run in order. Each step takes the results gathered so far (a dict) and
returns its own figures (a JSON-ready dict) plus its summary lines, which are printed as the step
finishes; later stages of the project append their steps to :data:`STEPS`. Before a step that takes
more than a few seconds, a status line on the ``bnn`` logger (stderr) says what it does.
"""

import logging
import os
import time

from host.link import Link
from host.stream import stream_images
from hw.boards import BOARDS
from model.pipeline import TrainRequest, summary_lines, train_and_save
from sim.board import simulated_board
from sim.cxxrtl import CxxrtlError, StreamSimulator
from sim.engine_run import DEFAULT_CLOCK_MHZ, backend_runner, default_backend_name, run_engine
from sim.serve import serving_in_background

from .common import emit_json

DEMO_DIR = os.path.join("runs", "demo")
ENGINE_FOLDING = (8, 32)  # P x S of the demo's engine
LINK_BOARD = "icebreaker"  # the simulated board the demo streams through
# P x S there: the default digits network fits the UP5K with the link at 4 x 16 (a real build,
# README), not at 4 x 32 (5,704 of 5,280 logic cells), which the fit estimate cannot tell apart
LINK_FOLDING = (4, 16)

log = logging.getLogger("bnn")


def train_step(results, out_dir):
    """Train on digits with ``bnn train``'s defaults, fold, and check against the golden model.

    Puts the :class:`model.pipeline.TrainOutcome` in ``results["training"]`` for the steps after it.
    """
    log.info("training on the digits set with bnn train's defaults (about 5 s on an idle machine)")
    outcome = train_and_save(TrainRequest(out=os.path.join(out_dir, "digits.bnn")))
    results["training"] = outcome
    summary = outcome.summary()
    lines = summary_lines(outcome)
    lines.append(f"  golden model vs float network: {summary['mismatches']['classes']} class mismatches, "
                 f"{summary['mismatches']['activations']} hidden activation mismatches")
    return summary, lines


def engine_step(results, out_dir):
    """Compile the trained model for a P x S engine and run the whole test split through the
    simulated gateware, cycle by cycle, comparing every class and score with the golden model."""
    outcome = results["training"]
    pe, simd = ENGINE_FOLDING
    backend = default_backend_name()
    images = outcome.dataset.test_images
    pace = "cxxrtl back end" if backend == "cxxrtl" else "Amaranth's simulator: a few minutes"
    log.info(f"running the {len(images)} test images through the simulated {pe} x {simd} engine, cycle by "
             f"cycle ({pace})")
    run = run_engine(outcome.model, images, pe=pe, simd=simd, backend=backend_runner(backend))
    figures = run.figures(DEFAULT_CLOCK_MHZ)
    figures["backend"] = backend
    cycles = figures["cycles_per_frame"]
    lines = [
        f"simulated engine (P x S = {pe} x {simd}, {backend} back end): {figures['frames']} test images, "
        f"{figures['mismatches']} mismatches with the golden model",
        f"  cycles per frame: measured {cycles['measured']}, analytic {cycles['analytic']}, ideal "
        f"{cycles['ideal']}; {figures['frames_per_second']:.0f} frames/s at {DEFAULT_CLOCK_MHZ:g} MHz "
        f"(nominal clock)",
    ]
    return figures, lines


def link_step(results, out_dir):
    """Serve the trained model on a simulated iCEBreaker (``bnn serve-sim``: the board's link and
    engine, UART bit timing included, compiled with CXXRTL) and stream the test split through its
    serial line with the real host code (``bnn stream``), over a local TCP socket."""
    outcome = results["training"]
    model, data = outcome.model, outcome.dataset
    board = BOARDS[LINK_BOARD]
    pe, simd = LINK_FOLDING
    simulated = simulated_board(model, board, pe=pe, simd=simd)
    log.info(f"streaming the test images over the serial line of a simulated {board.name}, cycle by cycle "
             f"(bnn serve-sim and bnn stream; a few seconds)")
    try:
        library = simulated.compile()
    except CxxrtlError as e:
        return {"skipped": str(e)}, [f"streamed run over a simulated board: skipped ({e})"]
    with StreamSimulator(library) as simulator, \
            serving_in_background(simulator, idle_cycles=simulated.idle_cycles,
                                  quiet_cycles=simulated.quiet_cycles) as (server, _):
        with Link.open(f"socket://{server.address_text}", baud=simulated.baud) as link:
            report = stream_images(link, model, data.test_images, data.test_labels,
                                   board_cycles=lambda: server.stats.cycles)
    board_seconds = report["board_cycles"] / simulated.clock_hz
    del report["identity"]
    report.update(board=board.name, pe=pe, simd=simd, clock_hz=simulated.clock_hz, baud=simulated.baud,
                  board_seconds=board_seconds, board_frames_per_second=report["answered"] / board_seconds)
    fraction = report["board_frames_per_second"] / report["link_bound_frames_per_second"]
    lines = [
        f"streamed over a simulated {board.name} (bnn serve-sim: P x S = {pe} x {simd}, "
        f"{simulated.clock_hz / 1e6:.2f} MHz, {simulated.baud} baud) with the host code of bnn stream: "
        f"{report['frames']} test images, accuracy {100 * report['accuracy']:.2f}%, "
        f"{report['mismatches']} mismatches with the golden model, {report['failed']} failed",
        f"  {report['board_frames_per_second']:.0f} frames per second of board time, {100 * fraction:.0f}% of "
        f"the serial line's bound ({report['link_bound_frames_per_second']:.0f}); "
        f"{report['frames_per_second']:.0f} frames/s of wall time in simulation",
    ]
    return report, lines


STEPS = [("training", train_step), ("engine", engine_step), ("link", link_step)]


def run_demo(out_dir=DEMO_DIR, on_lines=lambda lines: None):
    """Run every step of :data:`STEPS`, calling ``on_lines`` with each step's summary lines as it
    finishes; return ``(figures by step name, seconds)``."""
    start = time.perf_counter()
    results, figures = {}, {}
    for name, step in STEPS:
        figures[name], lines = step(results, out_dir)
        on_lines(lines)
    return figures, time.perf_counter() - start


def add_parser(subparsers):
    p = subparsers.add_parser("demo", help="train, fold and verify a model on the embedded digits set, "
                                           "then run it on the simulated engine and a simulated board",
                              description="Train a binary network on the embedded 8x8 digits with the "
                                          f"default settings, write it to {DEMO_DIR}/, check the "
                                          "folded integer model against the float network, run the "
                                          "test split through the simulated engine cycle by cycle, then "
                                          "stream it over the serial line of a simulated iCEBreaker "
                                          "(bnn serve-sim + bnn stream).")
    p.add_argument("--out-dir", default=DEMO_DIR, metavar="DIR", help=f"where to write (default {DEMO_DIR})")
    p.add_argument("--json", action="store_true", help="print one JSON object with the figures on stdout")
    p.set_defaults(func=run)


def run(args):
    if args.json:
        figures, seconds = run_demo(args.out_dir)
        emit_json({**figures, "seconds": seconds})
        return 0
    _, seconds = run_demo(args.out_dir, on_lines=lambda lines: print("\n".join(lines), flush=True))
    print(f"demo finished in {seconds:.1f} s")
    return 0
