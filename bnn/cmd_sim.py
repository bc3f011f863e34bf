"""`bnn sim`: run a model file on the simulated engine, cycle by cycle, against the golden model."""

import sys

import numpy as np
from tqdm import tqdm

from model.modelfile import load_model
from sim.engine_run import run_engine

from .common import add_dataset_arguments, dataset_for_model, emit_json, positive_int


def probability(text):
    """argparse type: a number in [0, 1)."""
    import argparse
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, not {text!r}") from None
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), not {value}")
    return value


def add_parser(sub):
    p = sub.add_parser("sim", help="run a model on the simulated engine and compare with the golden model",
                       description="Compile a model for a P x S engine, run test images through "
                                   "Amaranth's simulator cycle by cycle, and compare every class and "
                                   "score with the golden model. Exits with status 1 on any mismatch.")
    p.add_argument("--model", required=True, metavar="FILE", help="model file written by `bnn train`")
    add_dataset_arguments(p)
    p.add_argument("--count", type=positive_int, default=100, metavar="N",
                   help="first N test images (default 100)")
    p.add_argument("--pe", type=positive_int, default=8, metavar="P", help="processing elements (default 8)")
    p.add_argument("--simd", type=positive_int, default=32, metavar="S",
                   help="input lanes per PE, a multiple of P (default 32)")
    p.add_argument("--tree-stages", type=int, default=0, metavar="D",
                   help="pipeline registers per popcount tree, each adds 1 cycle per layer (default 0)")
    p.add_argument("--pixels-per-beat", type=positive_int, metavar="K",
                   help="pixels per input transfer, a divisor of S (default gcd(S, 8))")
    p.add_argument("--input-gaps", type=probability, default=0.0, metavar="PROB",
                   help="probability of an idle input cycle (default 0)")
    p.add_argument("--output-stalls", type=probability, default=0.0, metavar="PROB",
                   help="probability of a not-ready output cycle (default 0)")
    p.add_argument("--seed", type=int, default=0, help="seed of the gap and stall patterns (default 0)")
    p.add_argument("--clock-mhz", type=float, default=100.0, metavar="F",
                   help="clock for the frames/s figure (default 100)")
    p.add_argument("--vcd", metavar="FILE", help="write a VCD trace of the run")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a summary")
    p.set_defaults(func=run)


def run(args):
    model = load_model(args.model)
    data = dataset_for_model(args, model)
    images, labels = data.test_images[:args.count], data.test_labels[:args.count]
    with tqdm(total=len(images), desc="bnn sim", unit="frame", file=sys.stderr,
              disable=None) as bar:
        result = run_engine(model, images, pe=args.pe, simd=args.simd, tree_stages=args.tree_stages,
                            pixels_per_beat=args.pixels_per_beat, seed=args.seed,
                            input_gaps=args.input_gaps, output_stalls=args.output_stalls,
                            vcd_path=args.vcd, progress=lambda: bar.update(1))
    report = result.figures(args.clock_mhz)
    correct = int(np.sum(result.classes == labels))
    report.update(model=str(args.model), arch=model.arch, input_bits=model.input.bits,
                  dataset=data.name, correct=correct, accuracy=correct / len(labels), vcd=args.vcd)
    if args.json:
        emit_json(report)
    else:
        cycles = report["cycles_per_frame"]
        print(f"{args.model}: {model.arch}, {model.input.bits}-bit input, {data.name} test split, "
              f"engine P x S = {args.pe} x {args.simd}")
        print(f"accuracy {100 * report['accuracy']:.2f}% ({correct}/{len(labels)}), "
              f"{report['mismatches']} mismatches with the golden model")
        print(f"cycles per frame: measured {cycles['measured']}, analytic {cycles['analytic']}, "
              f"ideal {cycles['ideal']} (utilisation {100 * report['utilisation']:.1f}%); "
              f"latency {report['latency']['measured']} cycles")
        print(f"{report['frames_per_second']:.0f} frames/s at {args.clock_mhz:g} MHz; simulator "
              f"{report['simulator_cycles_per_second']:.0f} cycles/s")
    if result.mismatches:
        print(f"bnn sim: {result.mismatches} frames differ from the golden model "
              f"(first: {result.mismatched_frames[:5]})", file=sys.stderr)
        return 1
    return 0
