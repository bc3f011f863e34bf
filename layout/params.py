"""The engine's parameters: what an engine is built for, their bounds, and its cycle figures.

:class:`EngineParams` are the elaboration parameters of :class:`hw.engine.Engine`;
:class:`LayerDescriptor` is one row of its sequencer's table. The functions below check the
parameters a user asks for and give the engine's analytic cycle figures (``docs/engine.md``,
"Pipeline and the cycle formula"), which the simulation tests check exactly. The compiler
(:mod:`layout.compiler`) lays a model out for these parameters.
"""

from dataclasses import dataclass
from math import gcd

from amaranth.utils import ceil_log2

from model.errors import BnnError

PLANES = 8  # bit planes of an 8-bit input pixel
# Cycles from a memory address to its data at the PEs: the block RAM's read register, then a
# register in the fabric (the routing from a block RAM is slow; see docs/engine.md).
MEMORY_LATENCY = 2
# A conv engine registers the window slice it gathers from two words (lane shift and mask) before
# the PEs: one more cycle from an address to the operands (docs/engine.md, "Convolutions").
GATHER_LATENCY = 1
# Cycles from a group's last term to its results in memory: the sums and signs are registered.
WRITE_LATENCY = 1
# Bounds of what can be meant: a P x S array of more lanes, or a popcount tree with more pipeline
# registers (one per adder level of a 4096-lane tree, plus the term's), is refused.
MAX_LANES = 4096
MAX_TREE_STAGES = 16
MAX_CAPACITY = 1 << 20   # words of an engine memory, layers, or bits of a width
# The EngineParams fields that size an engine's memories and widths: an engine built with them
# runs any network that fits them (see layout.compiler.compile_model's capacity).
CAPACITY_KEYS = ("weight_depth", "start_depth", "input_words", "act_words", "max_layers",
                 "score_count", "acc_width", "start_width", "score_width", "gather_rows")
# A conv engine's window rows one slice gathers from, at most: each costs two read ports on the
# input and on the activation memory (block RAM copies) and a lane shifter.
MAX_GATHER_ROWS = 8


class CompileError(BnnError):
    """The engine configuration is invalid, or the model does not fit it."""


def input_planes(input_bits):
    """Input memory words per S pixels: the 8 bit planes of 8-bit pixels, or 1 of binarized ones."""
    return PLANES if input_bits == 8 else 1


@dataclass(frozen=True)
class EngineParams:
    """Elaboration parameters of :class:`hw.engine.Engine`: what the hardware is built for.

    Any network whose :class:`layout.compiler.NetworkImage` fits these sizes runs on the same hardware.
    """

    pe: int                # P: processing elements (neurons in parallel)
    simd: int              # S: input lanes per PE per cycle; a multiple of pe
    input_bits: int        # 8 (raw pixels, bit-serial first layer) or 1 (binarized pixels)
    pixels_per_beat: int   # pixels per transfer on the input stream; divides simd
    tree_stages: int       # pipeline registers from the XNORs to the accumulator (popcount tree, term)
    acc_width: int         # width of accumulators (signed)
    start_width: int       # width of an accumulator start value (signed)
    score_width: int       # width of an output layer's score (signed)
    weight_depth: int      # words of pe * simd bits
    start_depth: int       # words of pe * start_width bits, one per neuron group
    input_words: int       # simd-pixel words per input bank (two banks)
    act_words: int         # simd-bit words per activation bank (two banks)
    max_layers: int        # rows of the layer descriptor table
    score_count: int       # score registers (a multiple of pe)
    conv: bool = False     # every layer a sweep of windows (convolutions, docs/engine.md); S a power of two
    gather_rows: int = 1   # conv: window rows one S-lane slice may gather from (docs/engine.md, "Window gather")

    @property
    def layer_gap(self):
        """Idle cycles after each layer: the fixed per-layer overhead of the cycle formula.

        The memory latency, the PEs' pipeline stages and the write latency, so that the last
        activation bits are written before the next layer reads them.
        """
        return layer_gap_cycles(self.tree_stages, conv=self.conv)

    @property
    def operand_latency(self):
        """Cycles from a command's issue to its operands at the PEs."""
        return operand_latency(self.conv)

    @property
    def argmax_latency(self):
        return argmax_latency(self.score_count)


@dataclass(frozen=True)
class Window:
    """How a ``conv`` engine walks a layer's input map (``docs/engine.md``, "Convolutions").

    The input map is stored ``channels`` (C) values per pixel, ``row_step`` = W * C per row. The
    sweep covers ``lines`` x ``cols`` positions (output pixels, or pool windows if ``pool``),
    moving ``pixel_step`` (C, or 2C with pool) per column and ``line_step`` (W*C, or 2*W*C) per
    line; the last of a window row's slices has ``lanes`` valid lanes. A fully connected layer
    is one position of one row of ``fan_in`` values.

    The slice walk (``docs/engine.md``, "Window gather"): a slice's first element moves
    ``step`` elements on, or ``wrap_step`` when its place in its window row, advanced by
    ``pos_step``, reaches ``row_lanes`` (the row is left behind); piece ``q`` of a slice (window row ``q`` after the
    slice's first) starts ``q * skip`` elements after the first piece. A layer whose slices
    span window rows has one walked row of ``K * K * C`` values, ``row_lanes`` = K*C and
    ``skip`` = (W - K) * C; otherwise ``step`` = S, ``pos_step`` = 0 and ``row_lanes`` = S:
    every slice is one piece.
    """

    lines: int
    cols: int
    pool: bool
    lanes: int
    channels: int
    pixel_step: int
    row_step: int
    line_step: int
    step: int = 0
    wrap_step: int = 0
    pos_step: int = 0
    row_lanes: int = 0
    skip: int = 0


@dataclass(frozen=True)
class LayerDescriptor:
    """One row of the sequencer's table: the loops of one layer.

    ``slices`` = S-bit input words per walked window row (ceil(fan_in / S) in a fully connected
    layer; ceil(K * K * C / S) in a convolution whose slices span window rows, ``rows`` then 1),
    ``groups`` = ceil(fan_out / P) neuron groups, ``bit_serial`` = 8-bit layer 0, one bit plane
    of the pixels per cycle (8 planes per slice), ``last`` = output layer. In a ``conv`` engine,
    ``rows`` = window rows (K), ``positions`` = windows per group sweep (output pixels computed,
    4 per pool window), ``window`` the addressing, and ``ideal`` the layer's ideal cycles
    (``positions`` x groups x ceil(K*K*C_in / S) x planes).
    """

    slices: int
    groups: int
    bit_serial: bool
    last: bool
    rows: int = 1
    positions: int = 1
    window: Window | None = None
    ideal: int | None = None

    @property
    def planes(self):
        return PLANES if self.bit_serial else 1

    @property
    def window_words(self):
        """S-lane words one window issues (pad lanes included): rows * slices."""
        return self.rows * self.slices

    @property
    def cycles(self):
        """Issue cycles of the layer: one per (position, group, row, slice, plane)."""
        return self.positions * self.groups * self.rows * self.slices * self.planes

    @property
    def ideal_cycles(self):
        return self.cycles if self.ideal is None else self.ideal


def argmax_latency(score_count):
    """Cycles the pipelined argmax (:class:`hw.argmax.Argmax`) takes over ``score_count`` score
    registers: one per level of its tree."""
    return ceil_log2(score_count)


def operand_latency(conv):
    """Cycles from a command's issue to its operands at the PEs (:attr:`EngineParams.operand_latency`):
    the memories' two registers, and in a ``conv`` engine the gathered slice's register."""
    return MEMORY_LATENCY + (GATHER_LATENCY if conv else 0)


def layer_gap_cycles(tree_stages, *, conv=False):
    """Idle cycles after each layer (:attr:`EngineParams.layer_gap`)."""
    return operand_latency(conv) + tree_stages + WRITE_LATENCY


def compute_cycles(descriptors, layer_gap):
    """Cycles from a frame's first command to the cycle after its last score is written:
    ``ideal + layers * layer_gap``."""
    return sum(d.cycles + layer_gap for d in descriptors)


def cycles_per_frame(descriptors, layer_gap, argmax_latency):
    """Steady-state cycles between results: :func:`compute_cycles` plus the argmax stall.

    The output layer of a frame may only start the cycle after the previous result has been
    taken, which is ``argmax_latency`` cycles after its last score; the frame's hidden layers
    overlap that wait, so it costs ``max(0, argmax_latency + 1 - hidden layers' cycles)`` (0 for
    all but tiny networks).
    """
    stall = max(0, argmax_latency + 1 - compute_cycles(descriptors[:-1], layer_gap))
    return compute_cycles(descriptors, layer_gap) + stall


def check_positive(name, value):
    """``value``; raises :class:`CompileError` unless it is a positive integer."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise CompileError(f"{name} must be a positive integer, not {value!r}")
    return value


def check_folding(pe, simd, *, pixels_per_beat, tree_stages):
    """The pixels per beat of a P x S engine: ``pixels_per_beat``, or ``gcd(simd, 8)`` if None.

    Raises :class:`CompileError` unless P and S are positive, P x S is at most
    :data:`MAX_LANES` lanes, S is a multiple of P (a neuron group's P output bits then fall into
    one activation word), the pixels per beat divide S, and ``tree_stages`` is in
    0..:data:`MAX_TREE_STAGES`.
    """
    check_positive("pe", pe)
    check_positive("simd", simd)
    if pe * simd > MAX_LANES:
        raise CompileError(f"P x S = {pe} x {simd} = {pe * simd} lanes; at most {MAX_LANES}")
    if simd % pe:
        raise CompileError(f"simd ({simd}) must be a multiple of pe ({pe})")
    if pixels_per_beat is None:
        pixels_per_beat = gcd(simd, 8)
    check_positive("pixels_per_beat", pixels_per_beat)
    if simd % pixels_per_beat:
        raise CompileError(f"pixels_per_beat ({pixels_per_beat}) must divide simd ({simd})")
    if isinstance(tree_stages, bool) or not isinstance(tree_stages, int) or not 0 <= tree_stages <= MAX_TREE_STAGES:
        raise CompileError(f"tree_stages must be an integer in 0..{MAX_TREE_STAGES}, not {tree_stages!r}")
    return pixels_per_beat


def check_capacity(capacity):
    """``capacity`` (a dict, or None for none) as a new dict; raises :class:`CompileError` unless
    its keys are :data:`CAPACITY_KEYS` and its values integers in 1..:data:`MAX_CAPACITY`."""
    capacity = dict(capacity or {})
    unknown = set(capacity) - set(CAPACITY_KEYS)
    if unknown:
        raise CompileError(f"unknown capacity keys: {sorted(unknown)}")
    for key, value in capacity.items():
        most = MAX_GATHER_ROWS if key == "gather_rows" else MAX_CAPACITY
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= most:
            raise CompileError(f"capacity {key} must be an integer in 1..{most}, not {value!r}")
    return capacity
