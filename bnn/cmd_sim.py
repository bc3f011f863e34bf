"""`bnn sim`: run a model file on the simulated engine, cycle by cycle, against the golden model."""

import argparse
import logging
import sys
from contextlib import contextmanager
from functools import partial

import numpy as np
from tqdm import tqdm

from layout.compiler import choose_folding
from layout.params import CAPACITY_KEYS, MAX_CAPACITY, MAX_GATHER_ROWS, MAX_TREE_STAGES
from model.errors import BnnError
from model.modelfile import load_model
from sim.amaranth_backend import run_amaranth
from sim.cxxrtl_backend import run_cxxrtl
from sim.engine_run import DEFAULT_CLOCK_MHZ, default_backend_name, run_engine

from .common import (add_dataset_arguments, check_output_paths, dataset_for_model, emit_json, int_at_least,
                     non_negative_int, positive_float, positive_int)

# Above this, a handshake pattern (4,096 cycles, repeated) may hold no transfer at all: the run
# would only end at its cycle budget, minutes or hours later in Amaranth's simulator.
MAX_PROBABILITY = 0.99

log = logging.getLogger("bnn")


def probability(text):
    """argparse type: a number in [0, :data:`MAX_PROBABILITY`]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, not {text!r}") from None
    if not 0 <= value <= MAX_PROBABILITY:
        raise argparse.ArgumentTypeError(f"must be in 0..{MAX_PROBABILITY}, not {value}")
    return value


def memory_size(text):
    """argparse type: ``NAME=N`` with a known engine size name and N >= 1."""
    name, _, value = text.partition("=")
    if name not in CAPACITY_KEYS or not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= MAX_CAPACITY:
        raise argparse.ArgumentTypeError(f"expected NAME=N with NAME one of {', '.join(CAPACITY_KEYS)} "
                                         f"and N in 1..{MAX_CAPACITY}, not {text!r}")
    return name, int(value)


def add_parser(sub):
    p = sub.add_parser("sim", help="run a model on the simulated engine and compare with the golden model",
                       description="Compile a model for a P x S engine, run test images through "
                                   "the simulated engine cycle by cycle (compiled with CXXRTL, or "
                                   "in Amaranth's simulator), and compare every class and "
                                   "score with the golden model. Exits with status 1 on any mismatch.")
    p.add_argument("--model", required=True, metavar="FILE", help="model file written by `bnn train`")
    add_dataset_arguments(p)
    p.add_argument("--count", type=positive_int, default=100, metavar="N",
                   help="first N test images (default 100)")
    p.add_argument("--pe", type=positive_int, metavar="P", help="processing elements (default 8)")
    p.add_argument("--simd", type=positive_int, metavar="S",
                   help="input lanes per PE, a multiple of P (default 32)")
    p.add_argument("--max-cycles", type=positive_int, metavar="N",
                   help="instead of --pe/--simd: the smallest P x S with at most N cycles per frame")
    p.add_argument("--tree-stages", type=int_at_least(0, MAX_TREE_STAGES), default=0, metavar="D",
                   help="pipeline registers per popcount tree, each adds 1 cycle per layer (default 0)")
    p.add_argument("--pixels-per-beat", type=positive_int, metavar="K",
                   help="pixels per input transfer, a divisor of S (default gcd(S, 8))")
    p.add_argument("--gather-rows", type=int_at_least(1, MAX_GATHER_ROWS), metavar="G",
                   help="CNNs: window rows one slice gathers from (each takes two more memory read ports; "
                        "default: as many as the model's convolutions use, see docs/engine.md)")
    p.add_argument("--memory", action="append", type=memory_size, default=[], metavar="NAME=N",
                   help="fix an engine size instead of fitting the model, e.g. weight_depth=512 "
                        "(repeatable); names: " + ", ".join(CAPACITY_KEYS))
    p.add_argument("--input-gaps", type=probability, default=0.0, metavar="PROB",
                   help=f"probability of an idle input cycle, at most {MAX_PROBABILITY} (default 0)")
    p.add_argument("--output-stalls", type=probability, default=0.0, metavar="PROB",
                   help=f"probability of a not-ready output cycle, at most {MAX_PROBABILITY} (default 0)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="seed of the gap and stall patterns (default 0)")
    p.add_argument("--clock-mhz", type=positive_float, default=DEFAULT_CLOCK_MHZ, metavar="F",
                   help=f"clock for the frames/s figure (default {DEFAULT_CLOCK_MHZ:g}, nominal)")
    p.add_argument("--backend", choices=("cxxrtl", "amaranth"),
                   help="simulator: the engine compiled to C++ with CXXRTL (fast; default when a C++ "
                        "compiler is found) or Amaranth's Python simulator")
    p.add_argument("--vcd", metavar="FILE", help="write a VCD trace of the run")
    p.add_argument("--vcd-frames", type=frame_range, metavar="FIRST:STOP",
                   help="with --vcd and the cxxrtl back end: trace only frames FIRST..STOP-1")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a summary")
    p.set_defaults(func=run)


def frame_range(text):
    """argparse type: ``FIRST:STOP`` with 0 <= FIRST < STOP."""
    first, _, stop = text.partition(":")
    try:
        first, stop = int(first), int(stop)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected FIRST:STOP, not {text!r}") from None
    if not 0 <= first < stop:
        raise argparse.ArgumentTypeError(f"need 0 <= FIRST < STOP, not {text!r}")
    return first, stop


def choose_backend(args, frames, builds):
    """The back end's name and runner; ``builds`` collects the CXXRTL build (for the report)."""
    name = args.backend or default_backend_name()
    if args.vcd_frames is not None:
        if name != "cxxrtl" or args.vcd is None:
            raise BnnError("--vcd-frames needs --vcd and the cxxrtl back end")
        if args.vcd_frames[1] > frames:
            raise BnnError(f"--vcd-frames {args.vcd_frames[0]}:{args.vcd_frames[1]} goes past the "
                           f"{frames} frames simulated")
    if name == "amaranth":
        return name, run_amaranth
    return name, partial(run_cxxrtl, vcd_frames=args.vcd_frames, on_build=builds.append)


def build_note(builds):
    """How the CXXRTL model was obtained, for the summary ("" for the Amaranth back end)."""
    if not builds:
        return ""
    return ", cached model" if not builds[0].built else f", compiled in {builds[0].build_seconds:.1f} s"


def folding(args, model):
    """P and S: given, chosen for --max-cycles, or the defaults 8 x 32."""
    if args.max_cycles is None:
        return args.pe or 8, args.simd or 32
    if args.pe or args.simd:
        raise BnnError("give either --max-cycles or --pe/--simd, not both")
    return choose_folding(model, max_cycles=args.max_cycles, tree_stages=args.tree_stages,
                          gather_rows=None if model.is_dense else args.gather_rows)


@contextmanager
def frame_bar(total, desc):
    """A callback to call once per frame, drawing a progress bar of ``total`` frames on stderr if
    it is a terminal (never into a redirected log). The bar starts at the first frame, not during
    the build before it, so its rate and time left are those of the run."""
    bar = None

    def advance():
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, desc=desc, unit="frame", file=sys.stderr, disable=None)
        bar.update(1)

    try:
        yield advance
    finally:
        if bar is not None:
            bar.close()


def run(args):
    model = load_model(args.model)
    data = dataset_for_model(args, model)
    images, labels = data.test_images[:args.count], data.test_labels[:args.count]
    pe, simd = folding(args, model)
    if args.vcd is not None:
        check_output_paths([args.vcd])
    builds = []
    backend, runner = choose_backend(args, len(images), builds)
    if backend == "amaranth":
        log.info(f"simulating {len(images)} frames in Amaranth's simulator, cycle by cycle")
    capacity = dict(args.memory)
    if args.gather_rows is not None:
        capacity["gather_rows"] = args.gather_rows
    with frame_bar(len(images), "bnn sim") as advance:
        result = run_engine(model, images, pe=pe, simd=simd, tree_stages=args.tree_stages,
                            pixels_per_beat=args.pixels_per_beat, capacity=capacity, seed=args.seed,
                            input_gaps=args.input_gaps, output_stalls=args.output_stalls,
                            vcd_path=args.vcd, progress=advance, backend=runner)
    report = result.figures(args.clock_mhz)
    correct = int(np.sum(result.classes == labels))
    params = result.compiled.params
    report.update(model=str(args.model), arch=model.arch, input_bits=model.input.bits,
                  gather_rows=params.gather_rows if params.conv else None,
                  dataset=data.name, correct=correct, accuracy=correct / len(labels), vcd=args.vcd,
                  backend=backend, build_seconds=builds[0].build_seconds if builds else None,
                  build_cached=not builds[0].built if builds else None)
    if args.json:
        emit_json(report)
    else:
        cycles = report["cycles_per_frame"]
        rows = params.gather_rows
        gather = f", slices gathered from up to {rows} window row{'s' if rows > 1 else ''}" if params.conv else ""
        print(f"{args.model}: {model.arch}, {model.input.bits}-bit input, {data.name} test split, "
              f"engine P x S = {pe} x {simd}{gather}")
        print(f"accuracy {100 * report['accuracy']:.2f}% ({correct}/{len(labels)}), "
              f"{report['mismatches']} mismatches with the golden model")
        print(f"cycles per frame: measured {cycles['measured']}, analytic {cycles['analytic']}, "
              f"ideal {cycles['ideal']} (utilisation {100 * report['utilisation']:.1f}%); "
              f"latency {report['latency']['measured']} cycles")
        print(f"{report['frames_per_second']:.0f} frames/s at {args.clock_mhz:g} MHz; simulator "
              f"({backend} back end{build_note(builds)}) {report['simulator_cycles_per_second']:.0f} cycles/s")
    if result.mismatches:
        print(f"bnn sim: {result.mismatches} frames differ from the golden model "
              f"(first: {result.mismatched_frames[:5]})", file=sys.stderr)
        return 1
    return 0
