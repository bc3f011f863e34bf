"""Lane utilisation of the engine, measured in Amaranth's simulator, and the simulator's speed.

For each architecture and P x S, a random 8-bit model runs a few frames back to back (input always
available, output always ready); the measured cycles between results are compared with the ideal
sum over layers of ceil(fan_out/P) * ceil(fan_in/S) (times 8 bit planes for the first layer).
Target: measured within 3% of ideal. Every result is also checked against the golden model.
Prints a table, writes ``bench/out/engine_utilisation.json``, exits 1 if a row misses the target.

    .venv/bin/python bench/engine_utilisation.py
    .venv/bin/python bench/engine_utilisation.py --tree-stages 1 --frames 4
    .venv/bin/python bench/engine_utilisation.py --markdown    # print the README's table from the JSON
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from bench.results import read, write  # noqa: E402
from sim.engine_run import run_engine  # noqa: E402
from model.random_models import random_images, random_model  # noqa: E402

ARCHS = ("784-256-256-256-10", "784-64-64-64-10")
FOLDINGS = ((8, 32), (16, 64))
TARGET = 0.03


def measure(arch, pe, simd, tree_stages, frames):
    sizes = [int(n) for n in arch.split("-")]
    model = random_model(sizes, input_bits=8, seed=1)
    run = run_engine(model, random_images(frames, sizes[0], seed=1), pe=pe, simd=simd, tree_stages=tree_stages)
    compiled = run.compiled
    measured = run.measured_cycles_per_frame
    return {
        "arch": arch, "pe": pe, "simd": simd, "tree_stages": tree_stages, "frames": frames,
        "mismatches": run.mismatches,
        "ideal": compiled.ideal_cycles, "analytic": compiled.cycles_per_frame, "measured": measured,
        "all_intervals_equal": len(set(run.intervals)) == 1,
        "overhead": measured / compiled.ideal_cycles - 1,
        "latency": run.latency, "load_cycles": compiled.load_cycles,
        "simulator_cycles_per_second": run.cycles_per_second,
    }


def markdown(results):
    """The README's table, from the recorded ``results``."""
    lines = [f"| network | P x S | ideal | measured = analytic | overhead (target {100 * results['target']:.0f}%) |",
             "|---|---|---|---|---|"]
    for r in results["rows"]:
        measured = r["measured"] if r["measured"] == r["analytic"] else f"{r['measured']} (analytic {r['analytic']})"
        lines.append(f"| {r['arch']} | {r['pe']} x {r['simd']} | {r['ideal']} | {measured} | "
                     f"{100 * r['overhead']:.2f}% |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tree-stages", type=int, default=0)
    parser.add_argument("--frames", type=int, default=3, help="frames per run (at least 2)")
    parser.add_argument("--markdown", action="store_true", help="print the README table from the JSON and exit")
    args = parser.parse_args()
    if args.markdown:
        print(markdown(read("engine_utilisation")))
        return 0
    rows = []
    print(f"{'arch':<20} {'P x S':>7} {'ideal':>6} {'analytic':>8} {'measured':>8} {'overhead':>8} "
          f"{'mismatch':>8} {'sim cyc/s':>9}")
    for arch in ARCHS:
        for pe, simd in FOLDINGS:
            row = measure(arch, pe, simd, args.tree_stages, max(2, args.frames))
            rows.append(row)
            print(f"{arch:<20} {pe:>3}x{simd:<3} {row['ideal']:>6} {row['analytic']:>8} {row['measured']:>8} "
                  f"{100 * row['overhead']:>7.2f}% {row['mismatches']:>8} {row['simulator_cycles_per_second']:>9.0f}",
                  flush=True)
    ok = all(r["overhead"] <= TARGET and r["mismatches"] == 0 and r["measured"] == r["analytic"]
             and r["all_intervals_equal"] for r in rows)
    write("engine_utilisation", {"target": TARGET, "tree_stages": args.tree_stages, "rows": rows, "ok": ok})
    print("target met: measured within 3% of ideal, 0 mismatches" if ok else "TARGET MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
