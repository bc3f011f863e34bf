"""``bnn demo``: the whole journey on the embedded digits set, in about a minute.

The demo is a list of steps run in order. Each step takes the results gathered so far (a dict) and
returns its own figures (a JSON-ready dict) plus its summary lines; later stages of the project
append their steps to :data:`STEPS`.
"""

import os
import time

from sim.engine_run import DEFAULT_CLOCK_MHZ, backend_runner, default_backend_name, run_engine

from .cmd_train import TrainRequest, summary_lines, train_and_save
from .common import emit_json

DEMO_DIR = os.path.join("runs", "demo")
ENGINE_FOLDING = (8, 32)  # P x S of the demo's engine


def train_step(results, out_dir):
    """Train on digits with ``bnn train``'s defaults, fold, and check against the golden model.

    Puts the :class:`bnn.cmd_train.TrainOutcome` in ``results["training"]`` for the steps after it.
    """
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
    run = run_engine(outcome.model, outcome.dataset.test_images, pe=pe, simd=simd,
                     backend=backend_runner(backend))
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


STEPS = [("training", train_step), ("engine", engine_step)]


def run_demo(out_dir=DEMO_DIR):
    """Run every step of :data:`STEPS`; return ``(figures by step name, summary lines, seconds)``."""
    start = time.perf_counter()
    results, figures, lines = {}, {}, []
    for name, step in STEPS:
        figures[name], step_lines = step(results, out_dir)
        lines.extend(step_lines)
    return figures, lines, time.perf_counter() - start


def add_parser(subparsers):
    p = subparsers.add_parser("demo", help="train, fold and verify a model on the embedded digits set, "
                                           "then run it on the simulated engine",
                              description="Train a binary network on the embedded 8x8 digits with the "
                                          f"default settings, write it to {DEMO_DIR}/, check the "
                                          "folded integer model against the float network, then run the "
                                          "test split through the simulated engine cycle by cycle.")
    p.add_argument("--out-dir", default=DEMO_DIR, metavar="DIR", help=f"where to write (default {DEMO_DIR})")
    p.add_argument("--json", action="store_true", help="print one JSON object with the figures on stdout")
    p.set_defaults(func=run)


def run(args):
    figures, lines, seconds = run_demo(args.out_dir)
    if args.json:
        emit_json({**figures, "seconds": seconds})
        return 0
    print("\n".join(lines))
    print(f"demo finished in {seconds:.1f} s")
    return 0
