"""Simulation speed: the CXXRTL back end against Amaranth's simulator, and the whole test set.

1. Side by side on the same design (a 784-256-256-256-10 engine, P x S = 8 x 32 unless told
   otherwise): simulated cycles per second of each back end, the simulation alone (no build),
   the fastest of ``--repeat`` alternating runs each, and the ratio. Both runs start with the same frames,
   and their common results must be equal cycle for cycle. Target: ratio >= 1000.
2. The whole Fashion-MNIST test set (10,000 images) through the engine of ``--model`` at the same
   P x S with ``bnn sim --backend cxxrtl``, in a fresh process with an empty compile cache, so the
   time counts everything a user waits for: loading, elaboration, Yosys, the C++ compiler, the
   simulation and the golden-model comparison. Recorded per architecture, so that the MLP's and the
   CNN's runs sit side by side. Target: 0 mismatches in under 120 s for a fully connected network,
   under 5 minutes for a convolutional one (issue 10).

The model is ``--model FILE`` (e.g. trained with ``bnn train --dataset fashion-mnist --arch
784-256-256-256-10``), or else a random model of that shape (seeded). Prints a table, merges its
results into ``bench/out/sim_speed.json`` (its ``ok``: the side by side's targets; the other
architectures' test-set runs stay, each judged by its own figures), exits 1 if a target is missed.

    .venv/bin/python bench/sim_speed.py --model fmnist.bnn
    .venv/bin/python bench/sim_speed.py --amaranth-frames 1 --skip-test-set
    .venv/bin/python bench/sim_speed.py --model runs/bench/fmnist-256-kd.bnn --test-set-only   # keeps the side by side
    .venv/bin/python bench/sim_speed.py --model runs/bench/fmnist-cnn.bnn --test-set-only      # the CNN's run
    .venv/bin/python bench/sim_speed.py --markdown      # print docs/results.md's table from the JSON
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from functools import partial

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from bench.results import PYTHON, fingerprint, read, update  # noqa: E402
from model.modelfile import load_model, save_model  # noqa: E402
from model.random_models import random_images, random_model  # noqa: E402
from sim.amaranth_backend import run_amaranth  # noqa: E402
from sim.cxxrtl_backend import run_cxxrtl  # noqa: E402
from sim.engine_run import run_engine  # noqa: E402

ARCH = [784, 256, 256, 256, 10]
SPEEDUP_TARGET = 1000
TEST_SET_SECONDS = {"dense": 120, "conv": 300}   # the whole test set's wall-time target, by the model's kind
# The code that determines the results (bench/results.py): the engine, its layouts and compiler, both
# simulators, the models, and `bnn sim`, which the test-set runs start in a process of their own.
SOURCES = ["bench/sim_speed.py", "bnn/__init__.py", "bnn/__main__.py", "bnn/cli.py", "bnn/cmd_sim.py", "bnn/common.py",
           "hw", "layout", "model", "sim"]


def side_by_side(model, pe, simd, amaranth_frames, cxxrtl_frames, repeat, cache):
    """Both back ends on the same engine and images, ``repeat`` rounds of one run each,
    alternating so that both see the same load on this shared machine; the fastest run of each
    counts. Their common results must agree."""
    images = random_images(max(amaranth_frames, cxxrtl_frames), model.input.size, seed=1)
    fast_backend = partial(run_cxxrtl, cache=cache)
    slow_runs, fast_runs = [], []
    for _ in range(repeat):
        slow_runs.append(run_engine(model, images[:amaranth_frames], pe=pe, simd=simd, backend=run_amaranth))
        fast_runs.append(run_engine(model, images[:cxxrtl_frames], pe=pe, simd=simd, backend=fast_backend))
    slow = max(slow_runs, key=lambda run: run.cycles_per_second)
    fast = max(fast_runs, key=lambda run: run.cycles_per_second)
    frames = min(amaranth_frames, cxxrtl_frames)
    agree = (slow.classes[:frames].tolist() == fast.classes[:frames].tolist()
             and slow.scores[:frames].tolist() == fast.scores[:frames].tolist()
             and slow.intervals[:frames - 1] == fast.intervals[:frames - 1]
             and slow.latency == fast.latency)
    return {
        "pe": pe, "simd": simd, "cycles_per_frame": fast.compiled.cycles_per_frame,
        "amaranth": {"frames": amaranth_frames, "cycles": slow.cycles, "seconds": slow.seconds,
                     "cycles_per_second": slow.cycles_per_second, "mismatches": slow.mismatches},
        "cxxrtl": {"frames": cxxrtl_frames, "cycles": fast.cycles, "seconds": fast.seconds,
                   "cycles_per_second": fast.cycles_per_second, "mismatches": fast.mismatches},
        "speedup": fast.cycles_per_second / slow.cycles_per_second,
        "back_ends_agree": agree,
    }


def whole_test_set(model_path, pe, simd):
    """``bnn sim`` on all 10,000 Fashion-MNIST test images, cold compile cache, wall time, with the
    model's architecture and the target for its kind."""
    model = load_model(model_path)
    command = [sys.executable, "-m", "bnn", "sim", "--model", model_path, "--dataset", "fashion-mnist",
               "--count", "10000", "--pe", str(pe), "--simd", str(simd), "--backend", "cxxrtl", "--json"]
    with tempfile.TemporaryDirectory(prefix="bnn-cold-cache-") as cold:
        start = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "BNN_CACHE_DIR": cold},
                              cwd=os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
        seconds = time.perf_counter() - start
    if done.returncode not in (0, 1) or not done.stdout.strip():
        raise SystemExit(f"bnn sim failed (exit {done.returncode}): {done.stderr.strip()[-500:]}")
    report = json.loads(done.stdout)
    return {
        "arch": model.arch, "pe": pe, "simd": simd,
        "target_seconds": TEST_SET_SECONDS["dense" if model.is_dense else "conv"],
        "command": " ".join(["bnn", *command[3:]]), "wall_seconds": seconds, "frames": report["frames"],
        "mismatches": report["mismatches"], "accuracy": report["accuracy"],
        "build_seconds": report["build_seconds"], "build_cached": report["build_cached"],
        "simulation_seconds": report["seconds"], "simulated_cycles": report["simulated_cycles"],
        "cycles_per_second": report["simulator_cycles_per_second"],
        "cycles_per_frame": report["cycles_per_frame"],
    }


def report_test_set(model_path, pe, simd):
    """Run :func:`whole_test_set`, print its figures, return them."""
    full = whole_test_set(model_path, pe, simd)
    print(f"whole Fashion-MNIST test set, {full['arch']}: {full['frames']} frames, {full['mismatches']} mismatches, "
          f"accuracy {100 * full['accuracy']:.2f}%, {full['wall_seconds']:.1f} s wall "
          f"(build {full['build_seconds']:.1f} s, simulation {full['simulation_seconds']:.1f} s at "
          f"{full['cycles_per_second']:,.0f} cycles/s), target < {full['target_seconds']} s")
    print(f"  command: {full['command']}  (BNN_CACHE_DIR empty)")
    return full


def whole_set_ok(full):
    """Whether a :func:`whole_test_set` run meets its target."""
    return full["mismatches"] == 0 and full["frames"] == 10000 and full["wall_seconds"] < full["target_seconds"]


def with_test_set(recorded, full):
    """``recorded`` with the test-set run ``full`` recorded anew under its architecture."""
    return {**recorded, "test_sets": {**recorded.get("test_sets", {}), full["arch"]: full}}


def bench_model(path):
    """The model at ``path``, or a seeded random one of the benchmark shape saved to a temp file."""
    if path is not None:
        return load_model(path), path
    model = random_model(ARCH, input_bits=8, seed=0)
    model.metadata["dataset"] = "fashion-mnist"
    handle, random_path = tempfile.mkstemp(suffix=".bnn", prefix="bnn-random-")
    os.close(handle)
    save_model(model, random_path)
    return model, random_path


def markdown(results):
    """docs/results.md's side-by-side table, with the sentence that introduces it, from the recorded ``results``."""
    speed = results["side_by_side"]
    amaranth, cxxrtl = speed["amaranth"], speed["cxxrtl"]
    return "\n".join([
        f"The same engine in both back ends (model: {results['model']}; P x S = {speed['pe']} x {speed['simd']}, "
        f"{speed['cycles_per_frame']:,} cycles per frame), with the results of their common frames "
        f"{'equal' if speed['back_ends_agree'] else 'NOT equal'} cycle for cycle:",
        "",
        "| back end | frames | cycles/s |",
        "|---|---|---|",
        f"| Amaranth's Python simulator | {amaranth['frames']:,} | {amaranth['cycles_per_second']:,.0f} |",
        f"| CXXRTL (Yosys `write_cxxrtl`, g++ -O3) | {cxxrtl['frames']:,} | {cxxrtl['cycles_per_second']:,.0f} |",
        f"| ratio | | **{speed['speedup']:,.0f}x** (target {SPEEDUP_TARGET:,}x) |",
        *[line for full in results.get("test_sets", {}).values() for line in ("", test_set_sentence(full))]])


def test_set_sentence(full):
    """docs/results.md's sentence on the whole Fashion-MNIST test set through ``bnn sim``, for one architecture."""
    return (f"The whole Fashion-MNIST test set ({full['frames']:,} images) through a {full['arch']} engine "
            f"({full['pe']} x {full['simd']}, {full['cycles_per_frame']['measured']:,} cycles per frame) with "
            f"`{full['command']}`, cycle-accurate, in a fresh process with an empty compile cache: "
            f"**{full['mismatches']} mismatches, {full['wall_seconds']:.1f} s wall** (build "
            f"{full['build_seconds']:.1f} s, simulation {full['simulation_seconds']:.1f} s at "
            f"{full['cycles_per_second'] / 1e6:.1f} M cycles/s; target {full['target_seconds']} s), accuracy "
            f"{100 * full['accuracy']:.2f}% as the golden model says.")


def units(results):
    """The parts of ``results`` that carry their own stamp: the side by side (``side_by_side``, with
    the top-level ``model`` and ``ok`` its run records) and each test-set run (``test_sets/<arch>``),
    which runs record separately."""
    side = {"side_by_side": results["side_by_side"]} if "side_by_side" in results else {}
    return {**side, **{f"test_sets/{arch}": full for arch, full in results.get("test_sets", {}).items()}}


def record_command(label, results):
    """The command that records the part ``label`` of ``results`` anew."""
    if label == "side_by_side":
        speed = results["side_by_side"]
        model = "" if results["model"].startswith("random ") else f" --model {results['model']}"
        return (f"{PYTHON} bench/sim_speed.py{model} --pe {speed['pe']} --simd {speed['simd']} --amaranth-frames "
                f"{speed['amaranth']['frames']} --cxxrtl-frames {speed['cxxrtl']['frames']} --skip-test-set")
    full = units(results)[label]
    command = full["command"].split()
    return (f"{PYTHON} bench/sim_speed.py --model {command[command.index('--model') + 1]} --pe {full['pe']} "
            f"--simd {full['simd']} --test-set-only")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="model file (default: a random 784-256-256-256-10 model)")
    parser.add_argument("--pe", type=int, default=8)
    parser.add_argument("--simd", type=int, default=32)
    parser.add_argument("--amaranth-frames", type=int, default=2, help="frames in Amaranth's simulator")
    parser.add_argument("--cxxrtl-frames", type=int, default=1000, help="frames for the CXXRTL speed figure")
    parser.add_argument("--repeat", type=int, default=3, help="runs per back end; the fastest counts")
    parser.add_argument("--skip-test-set", action="store_true", help="only the side-by-side figures")
    parser.add_argument("--test-set-only", action="store_true",
                        help="only the whole test set (needs --model); the recorded side by side stays")
    parser.add_argument("--markdown", action="store_true",
                        help="print the table of docs/results.md from the JSON and exit")
    args = parser.parse_args()
    if args.markdown:
        print(markdown(read("sim_speed")))
        return 0
    stamp = fingerprint(SOURCES)
    if args.test_set_only:
        if args.model is None:
            parser.error("--test-set-only needs --model (a model trained on Fashion-MNIST)")
        full = {**report_test_set(args.model, args.pe, args.simd), "sources": stamp}
        update("sim_speed", lambda recorded: with_test_set(recorded, full))
        return 0 if whole_set_ok(full) else 1
    model, model_path = bench_model(args.model)
    result = {"model": args.model or f"random {model.arch} (seed 0)"}

    with tempfile.TemporaryDirectory(prefix="bnn-bench-cache-") as cache:
        speed = side_by_side(model, args.pe, args.simd, args.amaranth_frames, args.cxxrtl_frames,
                             args.repeat, cache)
    result["side_by_side"] = {**speed, "sources": stamp}
    print(f"engine {model.arch}, P x S = {args.pe} x {args.simd}, "
          f"{speed['cycles_per_frame']} cycles/frame")
    print(f"{'back end':<10} {'frames':>6} {'cycles':>10} {'seconds':>8} {'cycles/s':>12}")
    for name in ("amaranth", "cxxrtl"):
        row = speed[name]
        print(f"{name:<10} {row['frames']:>6} {row['cycles']:>10} {row['seconds']:>8.2f} "
              f"{row['cycles_per_second']:>12,.0f}")
    print(f"speedup {speed['speedup']:,.0f}x (target >= {SPEEDUP_TARGET}x); "
          f"back ends agree: {speed['back_ends_agree']}", flush=True)
    result["ok"] = ok = speed["speedup"] >= SPEEDUP_TARGET and speed["back_ends_agree"]

    full = None
    if not args.skip_test_set:
        full = {**report_test_set(model_path, args.pe, args.simd), "sources": stamp}
        ok = ok and whole_set_ok(full)
    if args.model is None:
        os.remove(model_path)

    def merge(recorded):
        merged = {**recorded, **result}
        return with_test_set(merged, full) if full else merged
    update("sim_speed", merge)
    print("targets met" if ok else "TARGET MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
