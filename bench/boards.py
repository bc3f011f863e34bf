"""Board builds: `bnn build`'s flow on the rows of the README's board table.

Each row builds a random model of the given architecture and input width (seed 1: the weights only
change memory contents, not the logic; a convolutional architecture starts with its input image,
``28x28-``) for a board at its default clock, or at a lower clock that the row names where timing
does not close at the default (the default then stays its target), with the serial link's
board top (weights in SPRAM where they do not fit block RAM, as `bnn build` places them), places and routes it
with seeds 1..5 (`bnn build --seeds 5`) and records nextpnr's post-route Fmax of each (the table gives the
median, min and max; the resources are the kept seed's), cycles per frame, frames/s, and the engine's own
LUT4s (Yosys' count of the engine module) with the lanes (P x S) per LUT4. Writes
``bench/out/boards.json`` (committed: the README's board table comes from it) and keeps every
build's folder under ``bench/out/boards/``.

    .venv/bin/python bench/boards.py                 # every row (the 16 x 64 ECP5 row takes longest)
    .venv/bin/python bench/boards.py --row icebreaker
    .venv/bin/python bench/boards.py --markdown      # print the README's table from the JSON
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from bench.results import OUT_DIR, PYTHON, fingerprint, read, update  # noqa: E402
from hw.boards import board  # noqa: E402
from hw.build import build  # noqa: E402
from model.arch import parse_arch  # noqa: E402
from model.random_models import random_conv_model, random_model  # noqa: E402

# The code that determines a row's figures (bench/results.py): the build flow and the gateware, the layouts
# and the random models it builds.
SOURCES = ["bench/boards.py", "hw", "layout", "model"]
# (row name, board, architecture, input bits, P, S, the Fmax target in MHz, clock in MHz: None for
# the board's default, where the weights live: bnn build's --weights)
ROWS = [
    ("icebreaker", "icebreaker", "784-64-64-64-10", 8, 4, 32, 40, None, "auto"),  # 8 x 32: no longer fits with the link
    ("icebreaker-sfc", "icebreaker", "784-256-256-256-10", 1, 4, 16, 30, None, "auto"),   # SPRAM: too big for BRAM
    ("hx8k", "hx8k-breakout", "784-64-64-64-10", 8, 8, 32, 90, None, "auto"),
    ("ulx3s-85f", "ulx3s-85f", "784-64-64-64-10", 8, 8, 32, 125, None, "auto"),
    ("ulx3s-85f-16x64", "ulx3s-85f", "784-256-256-256-10", 8, 16, 64, 110, None, "auto"),
    # slices gathered from 3 window rows: misses the board's 110 MHz (seeds 92.3-107.4 MHz at 95, median 102.1,
    # the slowest paths from a layer's start to the walk's register enables, mostly routing); 95 MHz closes
    ("ulx3s-85f-cnn", "ulx3s-85f", "28x28-c32k3-p-c64k3-p-256-10", 8, 8, 32, 110, 95, "auto"),
    # the wide CNN (bench/train_accuracy.py row fmnist-cnn-wide); at 100 MHz: 84.0 MHz, the
    # deeper weight memory's read mux, which lands between 78.1 and 84.9 MHz in four builds at 80 MHz; 75 closes
    ("ulx3s-85f-cnn-wide", "ulx3s-85f", "28x28-c64k3-p-c128k3-p-256-10", 8, 8, 32, 110, 75, "auto"),
    # weights in SPRAM, loaded through the link (4 x 16 does not fit beside the SPRAM port: 5287 cells)
    ("icebreaker-cnn", "icebreaker", "28x28-c8k3-p-c16k3-p-64-10", 8, 4, 8, 30, None, "spram"),
]


def row_model(arch, input_bits):
    """The row's random model (seed 1) of ``arch``: a ``bnn train --arch`` string, with the input's
    size or, for a convolutional network, its image (``28x28-c32k3-p-256-10``); raises ValueError
    for an architecture that does not name its input."""
    input_shape, specs = parse_arch(arch)
    if input_shape is None:
        raise ValueError(f"a board row's architecture starts with its input image, e.g. 28x28-{arch}")
    if len(input_shape) == 1:
        return random_model([int(v) for v in arch.split("-")], input_bits=input_bits, seed=1)
    return random_conv_model(input_shape, specs, input_bits=input_bits, seed=1)


def markdown(results):
    """The README's board table, from the recorded ``results``."""
    lines = ["| board (device) | model, P x S | logic cells | block RAM | Fmax: median of 5 seeds (min-max; target) | "
             "clock | cycles/frame | frames/s | engine LUT4s | lanes per LUT4 |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    bits = {r[0]: r[3] for r in ROWS}
    for r in results["rows"]:
        util = r["utilisation"]
        spread = r["seed_fmax"]
        ram = util.get("ICESTORM_RAM") or util.get("DP16KD")
        cells = util.get("ICESTORM_LC") or util.get("TRELLIS_COMB")
        lines.append(
            f"| {r['board']} ({r['device']}) | {r['arch']} ({bits[r['row']]}-bit input"
            f"{', weights in SPRAM' if r.get('weights_in_spram') else ''}), {r['pe']}x{r['simd']} | "
            f"{cells['used']} / {cells['available']} | {ram['used']} / {ram['available']} | "
            f"{spread['median']:.1f} MHz ({spread['min']:.1f}-{spread['max']:.1f}; {r['target_mhz']}) | "
            f"{r['clock_mhz']:.2f} MHz | {r['cycles_per_frame']} | "
            f"{r['frames_per_second']:,.0f} | {r['engine_resources']['luts']} | "
            f"{r['pe'] * r['simd'] / r['engine_resources']['luts']:.3f} |")
    return "\n".join(lines)


def record_command(label, results):
    """The command that records the row ``label`` of ``results`` anew, with as many seeds."""
    seeds = len(next(r for r in results["rows"] if r["row"] == label)["seeds"])
    return f"{PYTHON} bench/boards.py --row {label} --seeds {seeds}"


def merge_row(recorded, result):
    """The recorded rows with ``result``'s row recorded anew, in the order of :data:`ROWS`."""
    rows = {**{r["row"]: r for r in recorded.get("rows", [])}, result["row"]: result}
    return {"rows": [rows[name] for name, *_ in ROWS if name in rows]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--row", action="append", choices=[r[0] for r in ROWS], help="default: all")
    parser.add_argument("--markdown", action="store_true", help="print the README table from the JSON and exit")
    parser.add_argument("--seeds", type=int, default=5, help="nextpnr seeds per row (default 5)")
    args = parser.parse_args()
    if args.markdown:
        print(markdown(read("boards")))
        return 0
    stamp = fingerprint(SOURCES)
    for row, name, arch, input_bits, pe, simd, target, clock, weights in ROWS:
        if args.row and row not in args.row:
            continue
        model = row_model(arch, input_bits)
        start = time.perf_counter()
        report, _ = build(model, board(name), pe=pe, simd=simd, clock_mhz=clock, weights=weights, seeds=args.seeds,
                          out_dir=os.path.join(OUT_DIR, "boards", row), allow_timing_fail=True,
                          progress=lambda step, i, n: print(f"  {row}: [{i}/{n}] {step}", flush=True))
        cells = report.utilisation.get("ICESTORM_LC") or report.utilisation.get("TRELLIS_COMB")
        luts = report.engine_resources["luts"]
        result = {"row": row, "arch": arch, "target_mhz": target,
                  "lut_cells": cells["used"], "engine_luts": luts, "lanes_per_lut": pe * simd / luts,
                  "seconds_total": time.perf_counter() - start, **report.as_dict(), "sources": stamp}
        print(f"{row}: {arch} {pe}x{simd} Fmax median {report.seed_fmax['median']:.1f} MHz of {len(report.seeds)} "
              f"seeds, kept {report.fmax_mhz:.1f} MHz (clock {report.clock_mhz:.2f}, "
              f"target {target}), {cells['used']} cells, {report.frames_per_second:.0f} frames/s; "
              f"{report.critical_path}", flush=True)
        update("boards", lambda recorded: merge_row(recorded, result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
