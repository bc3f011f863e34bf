"""The board rows' synthesized netlists against the golden model, and how fast they simulate.

For each row of bench/boards.py, from its build folder (bench/out/boards/<row>, written by that bench):
1. the engine's netlist (:func:`sim.netlist.verify_netlist`) with ``--images`` random images of the
   row's model: classes and scores against the golden model, cycles per frame against the formula
   (not for rows whose weights are in SPRAM, which the bitstream cannot fill);
2. the whole link core's netlist on the simulated serial line (:func:`sim.netlist.verify_on_line`):
   the same images streamed by the host's Link, the model loaded over the line first for SPRAM rows;
3. the same stream into the RTL board (:func:`sim.board.simulated_board`, as ``bnn serve-sim``
   builds it): the simulator's cycles per second against the netlist's (target: the netlist at
   least 1/20 of the RTL's).

Writes ``bench/out/netlists.json`` (rows merged by name); ``--markdown`` prints the table in docs/results.md.

    .venv/bin/python bench/netlists.py --row icebreaker --row ulx3s-85f --images 100
    .venv/bin/python bench/netlists.py --markdown
"""

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from bench.boards import ROWS, row_model, SOURCES as BOARDS_SOURCES  # noqa: E402
from bench.results import OUT_DIR, PYTHON, fingerprint, read, update  # noqa: E402
from hw.boards import board as find_board  # noqa: E402
from layout.compiler import compile_model  # noqa: E402
from model.random_models import random_images  # noqa: E402
from sim.board import simulated_board  # noqa: E402
from sim.netlist import netlist_board, stream_on_line, verify_netlist  # noqa: E402

SPEED_TARGET = 1 / 20       # netlist cycles per second, at least this fraction of the RTL's
# The code that determines a row's figures (bench/results.py): the boards bench's, which built the netlists,
# the simulators (with their C++ driver and cell models) and the host's link on the simulated line.
SOURCES = [*BOARDS_SOURCES, "bench/netlists.py", "host", "sim"]


def measure(row, images_count):
    """One row's figures."""
    _, name, arch, input_bits, pe, simd, _target, clock, weights = next(r for r in ROWS if r[0] == row)
    build_dir = os.path.join(OUT_DIR, "boards", row)
    board = find_board(name)
    model = row_model(arch, input_bits)
    images = random_images(images_count, model.input.size, seed=7)
    labels = np.zeros(images_count, dtype=np.int64)       # random models: only the mismatches count
    result = {"row": row, "arch": arch, "pe": pe, "simd": simd, "images": images_count}
    netlist = netlist_board(build_dir)
    if not netlist.weights_in_spram:
        compiled = compile_model(model, pe=pe, simd=simd, tree_stages=board.tree_stages)
        start = time.perf_counter()
        run = verify_netlist(model, images, compiled, build_dir, board.device.family)
        figures = run.figures(netlist.clock_hz / 1e6)
        result["engine"] = {"mismatches": figures["mismatches"], "cycles_per_frame": figures["cycles_per_frame"],
                            "latency": figures["latency"], "seconds": time.perf_counter() - start}
    start = time.perf_counter()
    result["line"] = {**stream_on_line(netlist, model, images, labels), "seconds_total": time.perf_counter() - start}
    rtl = simulated_board(model, board, pe=pe, simd=simd, clock_mhz=clock, weights=weights)
    result["rtl_line"] = stream_on_line(rtl, model, images, labels)
    result["speed_ratio"] = result["line"]["cycles_per_second"] / result["rtl_line"]["cycles_per_second"]
    return result


def markdown(results):
    """The table in docs/results.md, from the recorded ``results``."""
    lines = ["| board row | P x S | images | engine netlist: mismatches, cycles/frame (formula) | "
             "link netlist on the line: mismatches, unanswered | simulated cycles/s: netlist, RTL |",
             "|---|---|---|---|---|---|"]
    for r in results["rows"]:
        engine = r.get("engine")
        engine_text = "weights in SPRAM: not in the bitstream" if engine is None else (
            f"{engine['mismatches']}, {engine['cycles_per_frame']['measured']} "
            f"({engine['cycles_per_frame']['analytic']})")
        line, rtl = r["line"], r["rtl_line"]
        lines.append(f"| {r['row']} | {r['pe']} x {r['simd']} | {r['images']} | {engine_text} | "
                     f"{line['mismatches']}, {line['failed']} | {line['cycles_per_second'] / 1e3:.0f} k, "
                     f"{rtl['cycles_per_second'] / 1e3:.0f} k |")
    return "\n".join(lines)


def record_command(label, results):
    """The command that records the row ``label`` of ``results`` anew, with as many images."""
    images = next(r for r in results["rows"] if r["row"] == label)["images"]
    return f"{PYTHON} bench/netlists.py --row {label} --images {images}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--row", action="append", choices=[r[0] for r in ROWS], help="default: all")
    parser.add_argument("--images", type=int, default=100, help="random images per row (default 100)")
    parser.add_argument("--markdown", action="store_true",
                        help="print the table of docs/results.md from the JSON and exit")
    args = parser.parse_args()
    if args.markdown:
        print(markdown(read("netlists")))
        return 0
    stamp = fingerprint(SOURCES)
    ok = True
    for row, *_ in ROWS:
        if args.row and row not in args.row:
            continue
        result = {**measure(row, args.images), "sources": stamp}
        engine = result.get("engine")
        passed = (result["line"]["mismatches"] == result["line"]["failed"] == 0 and (engine is None or (
            engine["mismatches"] == 0
            and engine["cycles_per_frame"]["measured"] == engine["cycles_per_frame"]["analytic"])))
        ok &= passed and result["speed_ratio"] >= SPEED_TARGET
        print(f"{row}: engine {engine and engine['mismatches']} mismatches, line {result['line']['mismatches']} "
              f"mismatches / {result['line']['failed']} unanswered, netlist "
              f"{result['line']['cycles_per_second']:.0f} cycles/s = {result['speed_ratio']:.3f} x RTL", flush=True)

        def merge(recorded, result=result):
            rows = {r["row"]: r for r in recorded.get("rows", [])}
            rows[result["row"]] = result
            return {"rows": [rows[name] for name, *_ in ROWS if name in rows]}
        update("netlists", merge)
    print("targets met" if ok else "TARGET MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
