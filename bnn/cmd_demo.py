"""``bnn demo``: the whole journey on the embedded digits set, in well under a minute.

The demo is a list of steps run in order. Each step takes the results gathered so far (a dict) and
returns its own figures (a JSON-ready dict) plus its summary lines; later stages of the project
append their steps to :data:`STEPS`.
"""

import os
import time

from .cmd_train import TrainRequest, summary_lines, train_and_save
from .common import emit_json

DEMO_DIR = os.path.join("runs", "demo")


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


STEPS = [("training", train_step)]


def run_demo(out_dir=DEMO_DIR):
    """Run every step of :data:`STEPS`; return ``(figures by step name, summary lines, seconds)``."""
    start = time.perf_counter()
    results, figures, lines = {}, {}, []
    for name, step in STEPS:
        figures[name], step_lines = step(results, out_dir)
        lines.extend(step_lines)
    return figures, lines, time.perf_counter() - start


def add_parser(subparsers):
    p = subparsers.add_parser("demo", help="train, fold and verify a model on the embedded digits set",
                              description="Train a binary network on the embedded 8x8 digits with the "
                                          f"default settings, write it to {DEMO_DIR}/, and check the "
                                          "folded integer model against the float network.")
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
