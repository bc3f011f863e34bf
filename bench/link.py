"""The serial link over `bnn serve-sim`: throughput against the line's bound, and injected faults.

1. Throughput. The digits model (trained here with `bnn train`'s defaults, or ``--model FILE``) on the
   simulated iCEBreaker (its clock, 3 Mbaud, the fastest folding that fits), served on a TCP socket by
   :mod:`sim.serve` in a thread; the host's :class:`host.link.Link` (real pyserial) streams the digits
   test split at each ``--frames-per-request``. Frames per *simulated* second cover the stream only:
   from the cycle the board's line took the first request byte to the cycle the last answer byte
   came out (a thin wrapper around the simulator records both), divided by the clock. The server
   does not simulate the host's reaction time (see :mod:`sim.serve`, "Simulated time"), so this
   measures the line and the board. It is reported as a fraction of
   :func:`layout.protocol.link_bound_fps` (protocol overhead counted). Target: at least 90% at one frame
   per request (`bnn stream`'s default). With more frames per request than
   :data:`layout.protocol.FRAMES_IN_FLIGHT`, the host waits for each answer before the next request;
   what remains of its reaction in simulated time is recorded, with the figure without it.
2. Faults. A small random model on a LinkCore at a low clock per bit (so that many requests take
   few cycles), streamed through :class:`host.link.Link`, whose port is a thin double around the
   pyserial socket that corrupts requests on their way to the board: a garbage burst of random
   length before the request, one bit flipped anywhere in it, or the request cut off (the rest never
   sent), drawn at a fixed seed until ``--faults`` were injected. Every frame must come back
   answered or reported failed (a frame that does neither is a hang), no answer the host accepted
   may differ from the golden model, and afterwards the board must answer a clean stream.
   Targets: 0 hangs, 0 wrong answers accepted, every frame answered or failed.

Writes ``bench/out/link.json``; ``--markdown`` prints the table in docs/results.md from it.

    .venv/bin/python bench/link.py                      # both parts (a few minutes)
    .venv/bin/python bench/link.py --faults 1000 --skip-throughput
    .venv/bin/python bench/link.py --markdown
"""

import argparse
import os
import random
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np  # noqa: E402
import serial  # noqa: E402

from bench.results import PYTHON, fingerprint, read, update  # noqa: E402
from bnn.cmd_demo import LINK_FOLDING  # noqa: E402
from host.board import compile_for_board  # noqa: E402
from host.errors import LinkError  # noqa: E402
from host.link import Link  # noqa: E402
from host.payloads import input_frame  # noqa: E402
from host.stream import ensure_model  # noqa: E402
from hw.boards import board as find_board  # noqa: E402
from hw.link import LinkCore  # noqa: E402
from hw.uart import uart_divisor  # noqa: E402
from layout.compiler import compile_model  # noqa: E402
from layout.protocol import Command, frame_bytes, link_bound_fps  # noqa: E402
from model.datasets import load_dataset  # noqa: E402
from model.golden import infer  # noqa: E402
from model.modelfile import load_model  # noqa: E402
from model.pipeline import TrainRequest, train_and_save  # noqa: E402
from model.random_models import random_images, random_model  # noqa: E402
from sim.board import SimulatedBoard, simulated_board  # noqa: E402
from sim.cxxrtl import StreamSimulator  # noqa: E402
from sim.serve import serving_in_background  # noqa: E402

# The code that determines the results (bench/results.py): the digits model's training, the gateware, the
# simulated board and its server, the host's link, the layouts, and the demo's folding (bnn/cmd_demo.py).
SOURCES = ["bench/link.py", "bnn/__init__.py", "bnn/cmd_demo.py", "bnn/common.py", "host", "hw", "layout", "model",
           "sim"]
PARTS = ("throughput", "throughput_fast", "faults")    # of the results: a run may record some only
BOARD = "icebreaker"
BAUD = 3_000_000
# the iCEBreaker's FT2232H carries 12 MHz / n exactly: 6 Mbaud is 5 clock cycles a bit at 30 MHz
FAST_BAUD = 6_000_000
FRACTION_TARGET = 0.9
FAST_FRACTION_TARGET = 0.99
# The fault run's board: a small model, 5 clock cycles per bit (the fewest bnn build allows:
# hw.plan.MIN_CYCLES_PER_BIT), a short receive timeout.
FAULT_ARCH = [20, 12, 10]
FAULT_FOLDING = {"pe": 2, "simd": 8, "tree_stages": 1}
FAULT_CLOCK_HZ = 500_000
FAULT_BAUD = 100_000
FAULT_TIMEOUT_CYCLES = 2_000
FAULT_LINK_TIMEOUT = 0.25       # seconds the host waits for an answer (the simulated board answers in ~1 ms)
FAULT_RATE = 0.5                # of the requests written
GARBAGE_MAX = 64                # bytes in a burst
FAULT_KINDS = ("garbage", "bit_flip", "truncation")
TRAINED_HERE = "trained here"   # the recorded model's name when the bench trained it
STALL_SECONDS = 60              # no frame yielded for this long: the stream is hung
DEAD_AFTER = 40                 # frames failed in a row: the board stopped answering, the run ends


class RecordingSimulator:
    """A :class:`sim.cxxrtl.StreamSimulator` that records, since :meth:`mark`, the cycle of the first
    byte taken in and of the last byte out, and the host's reaction cycles: the idle line from the
    board's last byte out to the host's next byte, in stretches where the host had no byte queued
    (the server simulates them, in chunks, while the host reacts in wall time; see the report of
    :func:`throughput`)."""

    def __init__(self, simulator):
        self._simulator = simulator
        self.mark()

    @property
    def model(self):
        return self._simulator.model

    @property
    def cycle(self):
        return self._simulator.cycle

    def mark(self):
        self.first_in = None         # cycle of the first byte taken
        self.last_out = None         # cycle of the last byte out
        self.reaction_cycles = 0
        self._answered_at = None     # the last byte out while the host had nothing queued

    def run(self, tokens, **options):
        batch = self._simulator.run(tokens, **options)
        if batch.consumed:
            first = int(batch.in_cycles[0])
            if self.first_in is None:
                self.first_in = first
            elif self._answered_at is not None:
                self.reaction_cycles += first - self._answered_at - 1
            self._answered_at = None
        if len(batch.out_cycles):
            self.last_out = int(batch.out_cycles[-1])
            if len(tokens) == 0:
                self._answered_at = self.last_out
        return batch


def _url(server):
    return f"socket://127.0.0.1:{server.address[1]}"


def digits_model(path):
    """The model at ``path``, or the digits model `bnn train` makes with its defaults."""
    if path is not None:
        return load_model(path), path
    with tempfile.TemporaryDirectory(prefix="bnn-bench-link-") as out:
        outcome = train_and_save(TrainRequest(out=os.path.join(out, "digits.bnn")), progress=False)
    return outcome.model, f"{TRAINED_HERE}: bnn train defaults (digits {outcome.model.arch}), test accuracy " \
                          f"{outcome.folded_accuracy:.4f}"


def throughput(model, model_name, frames_per_request, baud=BAUD, target=FRACTION_TARGET):
    """Part 1: the digits test split over the simulated iCEBreaker at each frames-per-request."""
    board = find_board(BOARD)
    pe, simd = LINK_FOLDING   # the demo's: a folding a real build fits on the board
    simulated = simulated_board(model, board, pe=pe, simd=simd, baud=baud)
    print(f"{BOARD}: {model.arch}, P x S = {pe} x {simd}, {simulated.clock_hz / 1e6:.2f} MHz, {baud} baud "
          f"({simulated.divisor} cycles per bit); building the simulated board...", flush=True)
    library = simulated.compile()
    images = load_dataset("digits").test_images
    expected = infer(model, images).classes
    frames = [input_frame(model, image) for image in images]
    size = frame_bytes(model.input.bits, model.input.size)
    result = {"board": BOARD, "model": model_name, "arch": model.arch, "pe": pe, "simd": simd,
              "clock_hz": simulated.clock_hz, "baud": baud, "uart_divisor": simulated.divisor,
              "cycles_per_frame": simulated.compiled.cycles_per_frame, "frame_bytes": size,
              "build_seconds": library.build_seconds, "runs": []}
    with StreamSimulator(library) as simulator:
        recording = RecordingSimulator(simulator)
        with serving_in_background(recording, idle_cycles=simulated.idle_cycles,
                                   quiet_cycles=simulated.quiet_cycles) as (server, _), \
                Link.open(_url(server), baud=baud) as link:
            ensure_model(link, model)
            for per_request in frames_per_request:
                time.sleep(0.2)                     # the idle window passes: the line is quiet
                recording.mark()
                cycles_before, wall_start = server.stats.cycles, time.perf_counter()
                answers = dict(link.infer(frames, frames_per_request=per_request))
                wall = time.perf_counter() - wall_start
                cycles = server.stats.cycles - cycles_before
                streamed = recording.last_out + 1 - recording.first_in
                seconds = streamed / simulated.clock_hz
                fps = len(frames) / seconds
                bound = link_bound_fps(baud, size, per_request)
                fps_without_reaction = len(frames) * simulated.clock_hz / (streamed - recording.reaction_cycles)
                mismatches = sum(answers.get(k) != int(expected[k]) for k in range(len(frames)))
                run = {"frames_per_request": per_request, "frames": len(frames), "mismatches": int(mismatches),
                       "failed": sum(a is None for a in answers.values()), "retries": link.stats.retries,
                       "stream_cycles": streamed, "simulated_seconds": seconds,
                       "simulated_frames_per_second": fps, "link_bound_frames_per_second": bound,
                       "fraction_of_bound": fps / bound, "host_reaction_cycles": recording.reaction_cycles,
                       "fraction_of_bound_without_host_reaction": fps_without_reaction / bound,
                       "wall_seconds": wall,
                       "wall_frames_per_second": len(frames) / wall,
                       "simulated_cycles_per_second": cycles / wall}
                result["runs"].append(run)
                print(f"  {per_request} frame(s) per request: {fps:,.0f} frames per simulated second, "
                      f"{100 * run['fraction_of_bound']:.1f}% of the bound {bound:,.0f} "
                      f"({100 * run['fraction_of_bound_without_host_reaction']:.1f}% without the host's reaction "
                      f"time); {mismatches} mismatches; "
                      f"wall {run['wall_frames_per_second']:,.0f} frames/s, "
                      f"{run['simulated_cycles_per_second'] / 1e6:.2f} M cycles/s", flush=True)
    # The target is for bnn stream's default (1 frame per request, FRAMES_IN_FLIGHT requests in flight). With
    # K > FRAMES_IN_FLIGHT frames per request the host waits for each answer before it sends the next request,
    # so the line idles for the last frame's computation and the answer, and for the host's reaction, which
    # sim.serve simulates in chunks after the answer went out (its grace wait comes when the line runs dry,
    # before the answer): "without host reaction" leaves those cycles out.
    result["target"] = f"fraction_of_bound >= {target} at 1 frame per request"
    result["target_fraction"] = target
    result["ok"] = all(r["mismatches"] == 0 and r["failed"] == 0 for r in result["runs"]) and all(
        r["fraction_of_bound"] >= target for r in result["runs"] if r["frames_per_request"] == 1)
    return result


class FaultyPort:
    """A pyserial port whose writes (one request each, as :class:`host.link.Link` writes them) are
    corrupted at random until ``faults`` were injected: a garbage burst before the request, one bit
    flipped, or the request cut off."""

    def __init__(self, port, faults, seed):
        self._port = port
        self._rng = random.Random(seed)
        self.target = faults
        self.injected = {kind: 0 for kind in FAULT_KINDS}
        self.commands = {}          # faults by the command of the request they hit
        self.writes = 0

    @property
    def faults(self):
        return sum(self.injected.values())

    @property
    def timeout(self):
        return self._port.timeout

    @timeout.setter
    def timeout(self, value):
        self._port.timeout = value

    @property
    def in_waiting(self):
        return self._port.in_waiting

    def read(self, size):
        return self._port.read(size)

    def close(self):
        self._port.close()

    def write(self, data):
        self.writes += 1
        rng = self._rng
        if self.faults < self.target and rng.random() < FAULT_RATE:
            kind = rng.choice(FAULT_KINDS)
            self.injected[kind] += 1
            command = Command(data[1]).name
            self.commands[command] = self.commands.get(command, 0) + 1
            if kind == "garbage":
                data = rng.randbytes(rng.randint(1, GARBAGE_MAX)) + data
            elif kind == "bit_flip":
                corrupt = bytearray(data)
                bit = rng.randrange(8 * len(data))
                corrupt[bit // 8] ^= 1 << bit % 8
                data = bytes(corrupt)
            else:
                data = data[:rng.randrange(1, len(data))]
        return self._port.write(data)


def fault_board():
    """The fault run's simulated board: a small random model on a LinkCore at a low clock per bit."""
    model = random_model(FAULT_ARCH, input_bits=8, seed=1)
    compiled = compile_model(model, **FAULT_FOLDING)
    core = LinkCore(compiled, clock_hz=FAULT_CLOCK_HZ, baud=FAULT_BAUD, timeout_cycles=FAULT_TIMEOUT_CYCLES)
    divisor, baud_error = uart_divisor(FAULT_CLOCK_HZ, FAULT_BAUD)
    return model, SimulatedBoard(board=None, compiled=compiled, weights_in_spram=False, clock_hz=FAULT_CLOCK_HZ,
                                 baud=FAULT_BAUD, baud_error=baud_error, divisor=divisor, core=core)


def faults(count, seed, frames_per_request):
    """Part 2: ``count`` faults injected into a stream of valid INFER requests (and into the model
    loads the host makes when a fault costs the board its model)."""
    model, simulated = fault_board()
    library = simulated.compile()
    rng = np.random.default_rng(seed)
    config = {"arch": model.arch, "input_bits": 8, **FAULT_FOLDING, "clock_hz": FAULT_CLOCK_HZ, "baud": FAULT_BAUD,
              "uart_divisor": simulated.divisor, "timeout_cycles": FAULT_TIMEOUT_CYCLES,
              "idle_cycles": simulated.idle_cycles, "link_timeout_seconds": FAULT_LINK_TIMEOUT, "link_retries": 3,
              "fault_rate": FAULT_RATE, "garbage_bytes": [1, GARBAGE_MAX], "kinds": list(FAULT_KINDS),
              "frames_per_request": frames_per_request, "seed": seed}
    print(f"faults: {count} into INFER requests of a {model.arch} model, {FAULT_CLOCK_HZ} Hz, {FAULT_BAUD} baud, "
          f"timeout {FAULT_TIMEOUT_CYCLES} cycles; seed {seed}", flush=True)
    images, expected, answers = [], [], {}
    state = {"last_progress": time.monotonic(), "failed_in_a_row": 0, "dead": False, "reloads": 0,
             "reload_errors": []}

    def frames(port):
        """Frames until the faults are all injected (the generator is drawn lazily by Link.infer)."""
        while port.faults < count and not state["dead"]:
            batch = random_images(256, model.input.size, seed=int(rng.integers(1 << 31)))
            classes = infer(model, batch).classes
            for image, cls in zip(batch, classes):
                if port.faults >= count or state["dead"]:
                    return
                images.append(image)
                expected.append(int(cls))
                yield input_frame(model, image)

    stalled = threading.Event()
    start = time.perf_counter()
    with StreamSimulator(library) as simulator, \
            serving_in_background(simulator, idle_cycles=simulated.idle_cycles,
                                  quiet_cycles=simulated.quiet_cycles) as (server, _):
        raw = serial.serial_for_url(_url(server), baudrate=FAULT_BAUD, timeout=0.05)
        port = FaultyPort(raw, count, seed)
        link = Link(port, timeout=FAULT_LINK_TIMEOUT, retries=3, name="the simulated board")
        identity = link.identify()
        compiled = compile_for_board(model, identity)

        def reload():
            """A fault can cost the board its model (a request corrupted into a LOAD): load it again,
            through the same faulty line, until a load gets through."""
            state["reloads"] += 1
            for _ in range(10):
                try:
                    link.load(compiled, identity)
                    return
                except LinkError as e:
                    state["reload_errors"].append(str(e))
            raise LinkError("10 loads in a row failed")

        done = threading.Event()

        def watchdog():
            while not done.wait(1.0):
                if time.monotonic() - state["last_progress"] > STALL_SECONDS:
                    stalled.set()
                    raw.close()         # the Link's next read fails: the stream ends
                    return

        threading.Thread(target=watchdog, daemon=True).start()
        error = None
        try:
            for index, answer in link.infer(frames(port), frames_per_request=frames_per_request, reload=reload):
                answers[index] = answer
                state["last_progress"] = time.monotonic()
                state["failed_in_a_row"] = 0 if answer is not None else state["failed_in_a_row"] + 1
                if state["failed_in_a_row"] >= DEAD_AFTER:
                    state["dead"] = True        # the board no longer answers: stop drawing frames
                if len(answers) % 2000 == 0:
                    print(f"  {len(answers)} frames, {port.faults} faults", flush=True)
        except LinkError as e:
            error = str(e)
        done.set()
        fault_seconds = time.perf_counter() - start
        fault_stats = link.stats.as_dict()
        after = {"frames": 0, "mismatches": None, "failed": None, "error": None}
        if not stalled.is_set():
            # afterwards the board answers a clean stream
            check = random_images(50, model.input.size, seed=seed + 1)
            try:
                clean = Link(raw, timeout=2.0, retries=0, name="the simulated board")
                status = clean.status()
                got = dict(clean.infer([input_frame(model, image) for image in check]))
                want = infer(model, check).classes
                after = {"frames": len(check), "error": None, "board_counters": status,
                         "mismatches": sum(got.get(k) != int(want[k]) for k in range(len(check))),
                         "failed": sum(a is None for a in got.values())}
            except LinkError as e:
                after["error"] = str(e)
        raw.close()
        cycles = server.stats.cycles
    sent = len(images)
    answered = [k for k, a in answers.items() if a is not None]
    wrong = [k for k in answered if answers[k] != expected[k]]
    hangs = sent - len(answers)
    result = {
        "config": config, "faults": port.faults, "faults_by_kind": port.injected,
        "faults_by_command": port.commands, "writes": port.writes,
        "frames": sent, "answered": len(answered), "failed": sum(a is None for a in answers.values()),
        "hangs": hangs, "wrong_answers_accepted": len(wrong), "wrong_frames": wrong[:10],
        "board_stopped_answering": state["dead"], "model_reloads": state["reloads"],
        "reload_errors": state["reload_errors"][:5], "link_error": error, "stalled": stalled.is_set(),
        "seconds": fault_seconds, "simulated_cycles": cycles, "link": fault_stats, "after": after,
    }
    result["ok"] = (hangs == 0 and not wrong and error is None and not stalled.is_set() and not state["dead"]
                    and result["answered"] + result["failed"] == sent
                    and after["mismatches"] == 0 and after["failed"] == 0)
    print(f"  {port.faults} faults ({', '.join(f'{k} {n}' for k, n in port.injected.items())}) in {port.writes} "
          f"requests: {sent} frames, {result['answered']} answered, {result['failed']} reported failed, "
          f"{hangs} hangs, {len(wrong)} wrong answers accepted, {state['reloads']} model reloads"
          f"{', the board stopped answering' if state['dead'] else ''}; {fault_seconds:.0f} s; then a clean "
          f"stream: {after['mismatches']} mismatches, {after['failed']} failed {after['error'] or ''}", flush=True)
    return result


def markdown(result):
    """The table in docs/results.md: throughput rows, then the fault run."""
    lines = ["| part | configuration | result | target |", "|---|---|---|---|"]
    for t in (result.get("throughput"), result.get("throughput_fast")):
        if not t:
            continue
        for r in t["runs"]:
            lines.append(
                f"| throughput, {r['frames_per_request']} frame(s)/request | {t['board']} {t['arch']} "
                f"{t['pe']}x{t['simd']}, {t['clock_hz'] / 1e6:.0f} MHz, {t['baud']:,} baud, {r['frames']} digits "
                f"test frames | {r['simulated_frames_per_second']:,.0f} frames/s simulated = "
                f"**{100 * r['fraction_of_bound']:.1f}%** of the bound {r['link_bound_frames_per_second']:,.0f}; "
                f"{r['mismatches']} mismatches; wall {r['wall_frames_per_second']:,.0f} frames/s, "
                f"{r['simulated_cycles_per_second'] / 1e6:.2f} M cycles/s | "
                f"{'>= ' + format(t.get('target_fraction', FRACTION_TARGET), '.0%') if r['frames_per_request'] == 1 else ''} |")
    f = result.get("faults")
    if f:
        c = f["config"]
        kinds = ", ".join(f"{n} {k.replace('_', ' ')}s" for k, n in f["faults_by_kind"].items())
        lines.append(
            f"| faults | {c['arch']} {c['pe']}x{c['simd']}, {c['uart_divisor']} cycles/bit, timeout "
            f"{c['timeout_cycles']} cycles, seed {c['seed']} | {f['faults']:,} faults ({kinds}) in "
            f"{f['writes']:,} requests: {f['frames']:,} frames, {f['answered']:,} answered, {f['failed']} reported "
            f"failed, **{f['hangs']} hangs, {f['wrong_answers_accepted']} wrong answers accepted** | 0, 0 |")
    return "\n".join(lines)


def with_ok(result):
    """``result`` with ``ok``: every part recorded met its targets."""
    return {**result, "ok": all(part["ok"] for part in units(result).values())}


def units(results):
    """The parts of ``results`` (:data:`PARTS`) recorded, each with its own stamp."""
    return {part: results[part] for part in PARTS if part in results}


def record_command(label, results):
    """The command that records the part ``label`` of ``results`` anew (both throughput parts together)."""
    if label != "faults":
        throughput = results["throughput"]
        per_request = " ".join(str(run["frames_per_request"]) for run in throughput["runs"])
        model = "" if throughput["model"].startswith(TRAINED_HERE) else f" --model {throughput['model']}"
        return f"{PYTHON} bench/link.py --skip-faults --frames-per-request {per_request}{model}"
    faults = results["faults"]
    return (f"{PYTHON} bench/link.py --skip-throughput --faults {faults['faults']} --seed {faults['config']['seed']} "
            f"--fault-frames-per-request {faults['config']['frames_per_request']}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="digits model file (default: train one with bnn train's defaults)")
    parser.add_argument("--frames-per-request", type=int, nargs="+", default=[1, 4], metavar="K")
    parser.add_argument("--faults", type=int, default=10_000, help="faults to inject (default 10000)")
    parser.add_argument("--fault-frames-per-request", type=int, default=1, metavar="K")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--skip-faults", action="store_true")
    parser.add_argument("--markdown", action="store_true",
                        help="print the table of docs/results.md from the JSON and exit")
    args = parser.parse_args()
    if args.markdown:
        print(markdown(read("link")))
        return 0
    stamp = fingerprint(SOURCES)
    parts = {}
    if not args.skip_throughput:
        model, name = digits_model(args.model)
        parts["throughput"] = throughput(model, name, args.frames_per_request)
        parts["throughput_fast"] = throughput(model, name, [1], FAST_BAUD, FAST_FRACTION_TARGET)
    if not args.skip_faults:
        parts["faults"] = faults(args.faults, args.seed, args.fault_frames_per_request)
    parts = {name: {**part, "sources": stamp} for name, part in parts.items()}
    result = update("link", lambda recorded: with_ok({**recorded, **parts}))   # a part not run keeps its figures
    print(markdown(result))
    print("targets met" if result["ok"] else "TARGET MISSED")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
