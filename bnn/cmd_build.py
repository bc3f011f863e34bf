"""`bnn build`: a model file -> a bitstream for a board, with its resource and timing report."""

import os
import sys
import time

from hw.boards import BOARDS, board as find_board
from hw.build import ENGINE_MODULE, MAX_SEED, build, build_folder
from hw.plan import WEIGHT_STORES, engine_folding, link_clock, plan_engine
from layout.compiler import choose_folding
from model.errors import BnnError
from model.modelfile import load_model
from sim.netlist import CELL_MODELS, verify_netlist, verify_on_line

from .cmd_sim import frame_bar
from .common import (add_dataset_arguments, dataset_for_model, emit_json, int_at_least, path_argument,
                     positive_float, positive_int)


def add_parser(sub):
    p = sub.add_parser("build", help="build a bitstream of a model for a board (Yosys + nextpnr)",
                       description="Check that the model's engine fits the board, then synthesise "
                                   "(Yosys), place and route (nextpnr) and pack the bitstream, with "
                                   "the tools of the YoWASP packages. Reports resources, the achieved "
                                   "Fmax against the clock, the critical path and frames/s; fails if "
                                   "timing is not met. Programming the board is left to your own tool "
                                   "(iceprog, openFPGALoader).")
    p.add_argument("--board", metavar="NAME", help="target board (see --list-boards)")
    p.add_argument("--list-boards", action="store_true", help="list the boards and their FPGAs, then exit")
    p.add_argument("--model", metavar="FILE", help="model file written by `bnn train`")
    p.add_argument("--pe", type=positive_int, metavar="P",
                   help="processing elements (with --simd; default: the fastest folding that fits the board)")
    p.add_argument("--simd", type=positive_int, metavar="S", help="input lanes per PE, a multiple of P (with --pe)")
    p.add_argument("--max-cycles", type=positive_int, metavar="N",
                   help="instead of --pe/--simd: the smallest P x S with at most N cycles per frame")
    p.add_argument("--fps", type=positive_float, metavar="F",
                   help="instead of --pe/--simd: the smallest P x S reaching F frames/s at the clock")
    p.add_argument("--clock-mhz", type=positive_float, metavar="F",
                   help="engine clock (default: the board's, where timing is known to close)")
    p.add_argument("--baud", type=positive_int, default=3_000_000, help="serial line rate (default 3000000)")
    p.add_argument("--weights", choices=WEIGHT_STORES, default="auto",
                   help="where the weights live: block RAM, or the UP5K's SPRAM (1 Mbit, P x S <= 64, loaded "
                        "by the host: `bnn load`); auto: block RAM if they fit, else SPRAM (default)")
    p.add_argument("--seed", type=int_at_least(0, MAX_SEED), default=1, help="nextpnr placement seed (default 1)")
    p.add_argument("--seeds", type=int_at_least(1, 64), default=1, metavar="N",
                   help="place and route with N seeds, --seed and up, in parallel up to the processors "
                        "available; keep the fastest that meets the clock and report every seed's Fmax (default 1)")
    p.add_argument("--out", type=path_argument, metavar="DIR",
                   help="output folder (default build/<board>-<model name>)")
    p.add_argument("--allow-timing-fail", action="store_true",
                   help="keep the bitstream (exit 0) even if the achieved Fmax is below the clock")
    p.add_argument("--verify", type=positive_int, metavar="N",
                   help="then run the first N test images through the synthesized netlists (FPGA cell "
                        "models, compiled with CXXRTL): the engine's (classes, scores and cycles; not with "
                        "weights in SPRAM) and the whole link core's over the simulated serial line "
                        "(classes), each compared with the golden model")
    add_dataset_arguments(p)
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a summary")
    p.set_defaults(func=run)


def list_boards(as_json):
    rows = [{"board": b.name, "device": b.device.name, "family": b.device.family, "luts": b.device.luts,
             "block_rams": b.device.block_rams, "sprams": b.device.sprams, "dsps": b.device.dsps,
             "clock_mhz": b.clock_mhz, "description": b.description, "line_rates": b.line_rates}
            for b in BOARDS.values()]
    if as_json:
        emit_json({"boards": rows})
        return 0
    for r in rows:
        print(f"{r['board']:<16} {r['device']:<10} {r['luts']:>6} LUT4 {r['block_rams']:>4} block RAMs "
              f"{r['sprams']} SPRAM  default {r['clock_mhz']:g} MHz  {r['description']}; line: {r['line_rates']}")
    return 0


def folding(args, model, board):
    """P and S: chosen for --max-cycles or --fps, else :func:`hw.plan.engine_folding`'s (both given,
    or the fastest that fits the board)."""
    targets = [args.max_cycles is not None, args.fps is not None, bool(args.pe or args.simd)]
    if sum(targets) > 1:
        raise BnnError("give one of --pe/--simd, --max-cycles or --fps")
    clock = args.clock_mhz or board.clock_mhz
    if args.fps is not None:
        max_cycles = int(clock * 1e6 // args.fps)
        if max_cycles < 1:
            raise BnnError(f"{args.fps:g} frames/s is more than one frame per cycle at {clock:g} MHz")
        return choose_folding(model, max_cycles=max_cycles, tree_stages=board.tree_stages)
    if args.max_cycles is not None:
        return choose_folding(model, max_cycles=args.max_cycles, tree_stages=board.tree_stages)
    return engine_folding(model, board, pe=args.pe, simd=args.simd, weights=args.weights)


def run(args):
    if args.list_boards:
        return list_boards(args.json)
    if not args.board or not args.model:
        raise BnnError("--board and --model are required (or --list-boards)")
    if args.seed + args.seeds - 1 > MAX_SEED:
        raise BnnError(f"--seed {args.seed} --seeds {args.seeds} goes past nextpnr's largest seed, {MAX_SEED}")
    board = find_board(args.board)
    model = load_model(args.model)
    images = labels = None
    if args.verify:
        if board.device.family not in CELL_MODELS:
            raise BnnError(f"--verify: no simulation models of the {board.device.family} cells")
        dataset = dataset_for_model(args, model)
        images, labels = dataset.test_images[:args.verify], dataset.test_labels[:args.verify]
    pe, simd = folding(args, model, board)
    _, in_spram = plan_engine(model, board, pe=pe, simd=simd, weights=args.weights)
    link_clock(board, args.clock_mhz, args.baud)   # refused before the output folder is made
    name = os.path.splitext(os.path.basename(args.model))[0]
    out_dir = args.out or os.path.join("build", f"{board.name}-{name}")
    start = time.perf_counter()

    # --verify: the engine's netlist (scores and cycles; unless the weights are in SPRAM, which
    # the bitstream cannot fill), then the whole link core's on the simulated serial line
    checks = 0 if images is None else 1 + (not in_spram)
    steps = 4 + checks

    def progress(step, index, _total):
        print(f"[{index}/{steps}] {step}, starting {time.perf_counter() - start:.0f} s in", file=sys.stderr, flush=True)

    with build_folder(out_dir):   # no other build in it until --verify is done with it too
        report, compiled = build(model, board, pe=pe, simd=simd, clock_mhz=args.clock_mhz, seed=args.seed,
                                 seeds=args.seeds,
                                 out_dir=out_dir, baud=args.baud, weights=args.weights,
                                 allow_timing_fail=args.allow_timing_fail,
                                 progress=progress)
        result = report.as_dict()
        result.update(model=str(args.model), arch=model.arch)
        if images is not None and not in_spram:
            progress(f"netlist check: {len(images)} images through the synthesized engine", 5, steps)
            with frame_bar(len(images), "engine netlist") as advance:
                checked = verify_netlist(model, images, compiled, out_dir, board.device.family, ENGINE_MODULE,
                                         progress=advance)
            result["verify"] = {key: value for key, value in checked.figures(report.clock_mhz).items()
                                if key in ("frames", "mismatches", "mismatched_frames", "cycles_per_frame", "latency")}
        if images is not None:
            progress(f"line check: {len(images)} images over the serial line into the synthesized link core",
                     4 + checks, steps)
            with frame_bar(len(images), "link netlist") as advance:
                result["verify_line"] = verify_on_line(out_dir, model, images, labels, progress=advance)
    result["seconds_total"] = time.perf_counter() - start
    verified, on_line = result.get("verify"), result.get("verify_line")
    failed = (verified is not None and (verified["mismatches"] or verified["cycles_per_frame"]["measured"]
                                        not in (None, verified["cycles_per_frame"]["analytic"]))) or (
        on_line is not None and (on_line["mismatches"] or on_line["failed"]))
    if args.json:
        emit_json(result)
        return 1 if failed else 0
    used = report.utilisation

    def figure(kind):
        entry = used.get(kind)
        return f"{entry['used']}/{entry['available']}" if entry else "0"

    print(f"{board.name} ({board.device.name}): {model.arch}, engine P x S = {pe} x {simd}, "
          f"{report.tree_stages} PE pipeline stages")
    print("  " + ", ".join(f"{what} {figure(cell)}" for what, cell in board.device.nextpnr_cells))
    engine = report.engine_resources
    print(f"  of which the engine: {engine['luts']} LUT4s, {engine['flip_flops']} flip-flops, "
          f"{engine['block_rams']} block RAMs (the rest: clock, reset, serial link)")
    verdict = "met" if report.timing_met else "NOT MET"
    print(f"  Fmax {report.fmax_mhz:.1f} MHz for a {report.clock_mhz:.2f} MHz clock: timing {verdict}; "
          f"critical path {report.critical_path}")
    if len(report.seeds) > 1:
        spread = report.seed_fmax
        each = ", ".join(f"{entry['seed']}: {entry['fmax_mhz']:.1f}" for entry in report.seeds)
        print(f"  seeds {each} MHz; kept seed "
              f"{report.seed}; median {spread['median']:.1f}, min {spread['min']:.1f}, max {spread['max']:.1f} MHz")
    print(f"  {report.cycles_per_frame} cycles per frame (ideal {report.ideal_cycles}): "
          f"{report.frames_per_second:.0f} frames/s at {report.clock_mhz:.2f} MHz; "
          f"UART {report.baud} baud ({report.baud_error:+.1%})")
    if report.weights_in_spram:
        print("  the weights are in SPRAM, which the bitstream cannot fill: load the model after "
              "programming (bnn load, or bnn stream --model)")
    print(f"  bitstream {report.bitstream} (logs and report in {report.out_dir})")
    if verified is not None:
        cycles = verified["cycles_per_frame"]
        print(f"  netlist check: {verified['frames']} images, {verified['mismatches']} mismatches with the golden "
              f"model; cycles per frame measured {cycles['measured']}, analytic {cycles['analytic']}")
    if on_line is not None:
        print(f"  line check: {on_line['frames']} images over the serial line into the synthesized link core"
              + (" (the model loaded first)" if on_line["loaded"] else "")
              + f", {on_line['mismatches']} mismatches with the golden model, {on_line['failed']} unanswered")
    if failed:
        print("bnn build: the synthesized netlist disagrees with the golden model", file=sys.stderr)
        return 1
    return 0

