"""Running the fast simulation back end: a stream design compiled by :mod:`sim.cxxrtl_build` (Yosys's
CXXRTL), loaded with :mod:`ctypes` and driven in batches of many cycles: Python crosses into C++
once per batch, never per cycle.

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
import operator
from dataclasses import dataclass

import numpy as np

from .cxxrtl_build import CxxrtlError

__all__ = ["CxxrtlError", "PackedTokens", "StreamBatch", "StreamSimulator", "pack_tokens"]

_CHUNK_BITS = 32
_NEVER = (1 << 64) - 1


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
    """One running instance of a :class:`~sim.cxxrtl_build.CxxrtlLibrary`, starting at cycle 0 from
    ``init`` values.

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
        """The :class:`~sim.cxxrtl_build.CxxrtlLibrary` this instance runs."""
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
