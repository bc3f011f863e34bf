"""Lane utilisation of the engine, measured in simulation, and the simulator's speed.

For each architecture and P x S, a random 8-bit model runs a few frames back to back (input always
available, output always ready); the measured cycles between results are compared with the ideal
sum over layers of ceil(fan_out/P) * ceil(fan_in/S) (times 8 bit planes for the first layer; a
convolution's over its output pixels, with fan_in = K*K*C_in). Targets: measured within 3% of ideal
for the fully connected networks (Amaranth's simulator), within 5% for the CNNs the boards build
(issue 10; CXXRTL back end, with the engine's default gather rows). Every result is also checked
against the golden model. Prints a table, writes ``bench/out/engine_utilisation.json``, exits 1 if
a row misses its target.

    .venv/bin/python bench/engine_utilisation.py
    .venv/bin/python bench/engine_utilisation.py --tree-stages 1 --frames 4
    .venv/bin/python bench/engine_utilisation.py --markdown    # print docs/results.md's table from the JSON
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from bench.boards import row_model  # noqa: E402
from bench.results import PYTHON, fingerprint, read, write  # noqa: E402
from model.random_models import random_images  # noqa: E402
from sim.cxxrtl_backend import run_cxxrtl  # noqa: E402
from sim.engine_run import run_engine  # noqa: E402

ARCHS = ("784-256-256-256-10", "784-64-64-64-10")
FOLDINGS = ((8, 32), (16, 64))
TARGET = 0.03
# the CNNs of bench/boards.py's rows, at their P x S (and the Fashion CNN at 16 x 64)
CNN_ROWS = (("28x28-c32k3-p-c64k3-p-256-10", 8, 32), ("28x28-c32k3-p-c64k3-p-256-10", 16, 64),
            ("28x28-c64k3-p-c128k3-p-256-10", 8, 32), ("28x28-c8k3-p-c16k3-p-64-10", 4, 8))
CNN_TARGET = 0.05
# The code that determines the results (bench/results.py): the engine, its layouts and compiler, both
# simulators, and the random models (bench/boards.py's row_model).
SOURCES = ["bench/engine_utilisation.py", "bench/boards.py", "hw", "layout", "model", "sim"]


def measure(arch, pe, simd, tree_stages, frames, *, target=TARGET, backend=None):
    model = row_model(arch, 8)
    kwargs = {"backend": backend} if backend else {}
    run = run_engine(model, random_images(frames, model.input.size, seed=1), pe=pe, simd=simd,
                     tree_stages=tree_stages, **kwargs)
    compiled = run.compiled
    measured = run.measured_cycles_per_frame
    return {
        "arch": arch, "pe": pe, "simd": simd, "tree_stages": tree_stages, "frames": frames, "target": target,
        "gather_rows": compiled.params.gather_rows if compiled.params.conv else None,
        "simulator": "cxxrtl" if backend else "amaranth",
        "mismatches": run.mismatches,
        "ideal": compiled.ideal_cycles, "analytic": compiled.cycles_per_frame, "measured": measured,
        "all_intervals_equal": len(set(run.intervals)) == 1,
        "overhead": measured / compiled.ideal_cycles - 1,
        "latency": run.latency, "load_cycles": compiled.load_cycles,
        "simulator_cycles_per_second": run.cycles_per_second,
    }


def markdown(results):
    """The table in docs/results.md, from the recorded ``results``."""
    lines = ["| network | P x S | gather rows | ideal | measured = analytic | overhead | target |",
             "|---|---|---|---|---|---|---|"]
    for r in results["rows"]:
        measured = r["measured"] if r["measured"] == r["analytic"] else f"{r['measured']} (analytic {r['analytic']})"
        lines.append(f"| {r['arch']} | {r['pe']} x {r['simd']} | {r['gather_rows'] or '-'} | {r['ideal']} | "
                     f"{measured} | {100 * r['overhead']:.2f}% | {100 * r['target']:.0f}% |")
    return "\n".join(lines)


def record_command(label, results):
    """The command that records ``results`` anew, with their pipeline stages and frames per run."""
    return (f"{PYTHON} bench/engine_utilisation.py --tree-stages {results['tree_stages']} "
            f"--frames {results['rows'][0]['frames']}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tree-stages", type=int, default=0)
    parser.add_argument("--frames", type=int, default=3, help="frames per run (at least 2)")
    parser.add_argument("--markdown", action="store_true",
                        help="print the table of docs/results.md from the JSON and exit")
    args = parser.parse_args()
    if args.markdown:
        print(markdown(read("engine_utilisation")))
        return 0
    stamp = fingerprint(SOURCES)
    rows = []
    print(f"{'arch':<30} {'P x S':>7} {'ideal':>6} {'analytic':>8} {'measured':>8} {'overhead':>8} "
          f"{'mismatch':>8} {'sim cyc/s':>9}")
    runs = [(arch, pe, simd, {}) for arch in ARCHS for pe, simd in FOLDINGS]
    runs += [(arch, pe, simd, {"target": CNN_TARGET, "backend": run_cxxrtl}) for arch, pe, simd in CNN_ROWS]
    for arch, pe, simd, kwargs in runs:
        row = measure(arch, pe, simd, args.tree_stages, max(2, args.frames), **kwargs)
        rows.append(row)
        print(f"{arch:<30} {pe:>3}x{simd:<3} {row['ideal']:>6} {row['analytic']:>8} {row['measured']:>8} "
              f"{100 * row['overhead']:>7.2f}% {row['mismatches']:>8} {row['simulator_cycles_per_second']:>9.0f}",
              flush=True)
    ok = all(r["overhead"] <= r["target"] and r["mismatches"] == 0 and r["measured"] == r["analytic"]
             and r["all_intervals_equal"] for r in rows)
    write("engine_utilisation", {"tree_stages": args.tree_stages, "rows": rows, "ok": ok, "sources": stamp})
    print("targets met: measured within 3% (5% for CNNs) of ideal, 0 mismatches" if ok else "TARGET MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
