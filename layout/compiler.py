"""The compiler: a model file's network -> an engine's parameters (:mod:`layout.params`) and memory images.

It chooses nothing the user did not ask for except memory sizes (which default to "just fits"):
``pe`` (P, neurons computed in parallel) and ``simd`` (S, input lanes per PE per cycle) are given.
Its :class:`CompiledModel` carries everything :class:`hw.engine.Engine` needs, plus the analytic
cycle figures; the layout of every image is specified in ``docs/engine.md``.
"""

from dataclasses import dataclass

import numpy as np

from model.bits import unpack_bits
from model.modelfile import ConvLayer, MaxPoolLayer

from .params import (MAX_GATHER_ROWS, MAX_LANES, PLANES, CompileError, EngineParams, LayerDescriptor, Window,
                     argmax_latency, check_capacity, check_folding, check_positive, compute_cycles,
                     cycles_per_frame, input_planes, layer_gap_cycles)


@dataclass(frozen=True)
class NetworkImage:
    """The network as memory contents and configuration values (see ``docs/engine.md``)."""

    descriptors: tuple       # LayerDescriptor per layer
    weight_words: tuple      # int of pe * simd bits per address
    start_words: tuple       # int of pe * start_width bits per neuron group
    input_size: int          # pixels per frame
    input_threshold: int     # binarization threshold of a 1-bit model (0 for 8-bit)
    classes: int


@dataclass(frozen=True)
class CompiledModel:
    """Elaboration parameters, memory images and the analytic cycle figures of one model."""

    params: EngineParams
    image: NetworkImage

    @property
    def ideal_cycles(self):
        """Every lane busy every cycle: the sum over layers of positions * groups *
        ceil(fan_in / S) * planes (a convolution's positions: the output pixels it computes, all
        but those an odd-sized pool drops)."""
        return sum(d.ideal_cycles for d in self.image.descriptors)

    @property
    def compute_cycles(self):
        """Cycles from a frame's first command to the cycle after its last score is written:
        ideal + layers * layer_gap."""
        return compute_cycles(self.image.descriptors, self.params.layer_gap)

    @property
    def cycles_per_frame(self):
        """Steady-state cycles between results (see :func:`layout.params.cycles_per_frame`)."""
        return cycles_per_frame(self.image.descriptors, self.params.layer_gap, self.params.argmax_latency)

    @property
    def beats_per_frame(self):
        """Input stream transfers per frame (the last one zero-padded)."""
        return -(-self.image.input_size // self.params.pixels_per_beat)

    @property
    def input_planes(self):
        return input_planes(self.params.input_bits)

    @property
    def latency(self):
        """Cycles from the last input transfer of a frame to its result, on an idle engine: the
        loader writes the last word's planes, the frame is computed, the argmax settles."""
        return 1 + self.input_planes + self.compute_cycles + self.params.argmax_latency

    @property
    def load_cycles(self):
        """Cycles the loader needs per frame at full input rate (it overlaps the computation):
        one per beat plus the plane writes of every word, during which it holds the stream off."""
        return self.beats_per_frame + -(-self.image.input_size // self.params.simd) * self.input_planes


@dataclass(frozen=True)
class _LayerPlan:
    """A layer with weights as the engine runs it: its index in ``model.layers``, the layer, its
    descriptor, and how its weight rows spread over its walked window rows: ``(A, B, C, C_stored)``,
    a row is ``A`` walked rows of ``B`` pixels of ``C`` channels, stored ``C_stored`` apart."""

    index: int
    layer: object
    descriptor: LayerDescriptor
    spread: tuple
    out_bits: int      # bits of its output as stored (activation memory), or its scores
    pieces: int = 1    # window rows one of its slices gathers from, at most


def _pieces(kernel, row_lanes, simd):
    """The most window rows one slice touches when the ``kernel`` rows of ``row_lanes`` values
    each are sliced as one sequence of S-lane slices."""
    total = kernel * row_lanes
    return max((min(start + simd, total) - 1) // row_lanes - start // row_lanes + 1
               for start in range(0, total, simd))


def _conv_window(height, width, stored, kernel, pool, simd, gather_rows):
    """``(window, rows, slices, pieces)`` of a convolution over an ``H x W x C_stored`` map: its
    slices span window rows (one walked row of ``K * K * C`` values) if that takes fewer slices
    and a slice touches at most ``gather_rows`` window rows (``pieces`` of them), else each
    window row is sliced alone (``pieces`` 1)."""
    scale = 2 if pool else 1
    lines, cols = (height - kernel + 1) // scale, (width - kernel + 1) // scale
    row_lanes, row_step = kernel * stored, width * stored
    sweep = dict(lines=lines, cols=cols, pool=pool, channels=stored, pixel_step=scale * stored,
                 row_step=row_step, line_step=scale * row_step)
    per_row = -(-row_lanes // simd)
    spanning = -(-kernel * row_lanes // simd)
    pieces = _pieces(kernel, row_lanes, simd)
    if spanning < kernel * per_row and pieces <= gather_rows:
        skip = row_step - row_lanes
        rows_per_step, pos_step = divmod(simd, row_lanes)
        step = simd + rows_per_step * skip
        window = Window(**sweep, lanes=kernel * row_lanes - (spanning - 1) * simd, step=step,
                        wrap_step=step + skip, pos_step=pos_step, row_lanes=row_lanes, skip=skip)
        return window, 1, spanning, pieces
    window = Window(**sweep, lanes=row_lanes - (per_row - 1) * simd, step=simd, wrap_step=simd, row_lanes=simd)
    return window, kernel, per_row, 1


def _plan(model, pe, simd, conv, gather_rows=1):
    """A :class:`_LayerPlan` per layer with weights: the descriptors of the fully connected
    engine, or with ``conv`` the windows of a ``conv`` engine whose slices gather from up to
    ``gather_rows`` window rows (``docs/engine.md``, "Convolutions and max-pools"; a fully
    connected layer is one window)."""
    plans, feeding = [], model.input.map_shape if conv and isinstance(model.layers[0], ConvLayer) else None
    if feeding is not None:
        feeding = (*feeding, feeding[2])      # the image: (H, W, C, C stored)
    for k, layer in enumerate(model.layers):
        if isinstance(layer, MaxPoolLayer):
            continue
        outputs = layer.weights_shape[0]
        groups = -(-outputs // pe)
        bit_serial, last = k == 0 and model.input.bits == 8, k == len(model.layers) - 1
        planes = PLANES if bit_serial else 1
        pieces = 1
        if isinstance(layer, ConvLayer):
            height, width, channels, stored = feeding
            kernel = layer.kernel
            pool = k + 1 < len(model.layers) and isinstance(model.layers[k + 1], MaxPoolLayer)
            window, rows, slices, pieces = _conv_window(height, width, stored, kernel, pool, simd, gather_rows)
            positions = window.lines * window.cols * (4 if pool else 1)
            descriptor = LayerDescriptor(
                slices, groups, bit_serial, last, rows=rows, positions=positions,
                window=window, ideal=positions * groups * -(-layer.fan_in // simd) * planes)
            spread = (rows, kernel * kernel // rows, channels, stored)
            feeding = (window.lines, window.cols, outputs, groups * pe)
            out_bits = window.lines * window.cols * groups * pe
        else:
            if feeding is None:
                spread = (1, 1, layer.fan_in, layer.fan_in)
            else:
                height, width, channels, stored = feeding
                spread = (1, height * width, channels, stored)
            fan_in = spread[1] * spread[3]
            slices = -(-fan_in // simd)
            window = (Window(1, 1, False, fan_in - (slices - 1) * simd, fan_in, 0, 0, 0, step=simd, wrap_step=simd,
                             row_lanes=simd) if conv else None)
            ideal = groups * -(-layer.fan_in // simd) * planes if conv else None
            descriptor = LayerDescriptor(slices, groups, bit_serial, last, window=window, ideal=ideal)
            feeding, out_bits = None, outputs
        plans.append(_LayerPlan(k, layer, descriptor, spread, out_bits, pieces))
    return plans


def gather_rows_used(model, pe, simd):
    """The gather rows a ``conv`` engine needs for every convolution of ``model`` whose slices can
    span window rows to do so (at most :data:`layout.params.MAX_GATHER_ROWS`; 1 if none can)."""
    return max([p.pieces for p in _plan(model, pe, simd, True, MAX_GATHER_ROWS)], default=1)


def _descriptors(model, pe, simd, gather_rows=None):
    """The descriptors of ``model`` on its own kind of engine, with ``gather_rows`` (None: the
    model's, :func:`gather_rows_used`)."""
    conv = not model.is_dense
    if gather_rows is None:
        gather_rows = gather_rows_used(model, pe, simd) if conv else 1
    return tuple(plan.descriptor for plan in _plan(model, pe, simd, conv, gather_rows))


def _term_scale(d):
    """What one matching lane adds to the sum over a neuron's whole fan-in: 2 in an XNOR layer
    (each lane's term is ``2 * match``), ``2**8 - 1`` in a bit-serial layer (plane ``b``'s term
    is ``match << b``)."""
    return (1 << PLANES) - 1 if d.bit_serial else 2


def _bias(layer, d, simd, weight_ones):
    """The start value of a neuron before its threshold, given its weights' number of ones.

    Every lane adds ``scale * match`` over the neuron (:func:`_term_scale`), pad lanes (0 in both
    operands) included. XNOR layer: ``y = 2 * matches - fan_in``, so the bias is
    ``-(2 * S * slices - fan_in)`` and the pad lanes cancel. Bit-serial layer over 8-bit pixels
    ``p``: bitwise ``p & w = (p + w - 1 + xnor(p, w)) / 2``, so over the 8 planes and all lanes
    ``y = 2 * sum(p & w) - sum(p) = sum_b 2**b * matches_b + 255 * (ones(w) - S * slices)``: the
    frame's pixel sum cancels, and the bias is a constant of the neuron.
    """
    lanes = simd * d.window_words
    if d.bit_serial:
        return 255 * (weight_ones - lanes)
    return -(2 * lanes - layer.fan_in)


def _starts(model, plans, pe, simd):
    """Per layer, the accumulator start value of every neuron slot (``groups * pe``): its bias
    (:func:`_bias`) less its threshold. The sum then ends at ``y - threshold`` (``y`` in the
    output layer), so the activation bit is its sign: ``1`` iff the sum is ``>= 0``. Pad
    neurons (zero weights) get threshold ``bound + 1``, which no pre-activation reaches."""
    per_layer = []
    for plan in plans:
        layer, d = plan.layer, plan.descriptor
        outputs = layer.weights_shape[0]
        ones = unpack_bits(layer.weights, layer.fan_in).sum(axis=1, dtype=np.int64).tolist()
        ones += [0] * (d.groups * pe - outputs)
        pad = model.preactivation_bound(plan.index) + 1
        thresholds = [0] * outputs if layer.thresholds is None else [int(t) for t in layer.thresholds]
        thresholds += [0 if layer.thresholds is None else pad] * (d.groups * pe - outputs)
        per_layer.append([_bias(layer, d, simd, n) - t for n, t in zip(ones, thresholds)])
    return per_layer


def _signed_width(lo, hi):
    """Bits of the smallest two's complement shape holding every value in ``[lo, hi]``."""
    return max((-lo - 1).bit_length(), hi.bit_length()) + 1


def _start_range(model, plan, simd):
    """The start values any model of this shape can have in this layer: its bias for any weights,
    less every threshold the model file allows (``[-bound, bound + 1]``; none in the output
    layer). Sizing for the range, not for this model's values, lets every model of the shape fit."""
    layer, d = plan.layer, plan.descriptor
    biases = _bias(layer, d, simd, 0), _bias(layer, d, simd, layer.fan_in)
    lo, hi = min(biases), max(biases)
    bound = 0 if d.last else model.preactivation_bound(plan.index)
    return lo - bound - (0 if d.last else 1), hi + bound


def _widths(model, plans, simd):
    """``(acc_width, start_width, score_width)``: signed widths holding every start value, every
    partial sum (from the lowest start to the highest plus the most a layer's terms add), and
    every score (an output layer's final sum ``y``, ``|y| <= bound``)."""
    acc_lo = acc_hi = start_lo = start_hi = 0
    for plan in plans:
        lo, hi = _start_range(model, plan, simd)
        start_lo, start_hi = min(start_lo, lo), max(start_hi, hi)
        acc_lo = min(acc_lo, lo)
        acc_hi = max(acc_hi, hi + _term_scale(plan.descriptor) * simd * plan.descriptor.window_words)
    score_bound = model.preactivation_bound(plans[-1].index)
    return (_signed_width(acc_lo, acc_hi), _signed_width(start_lo, start_hi),
            _signed_width(-score_bound, score_bound))


def _window_bits(plan, pe, simd):
    """The layer's weights spread over its window: ``(groups * pe, rows, slices * simd)`` bits,
    row ``j`` of output ``j`` (zeros for pad outputs), lane ``r * S + i`` of walked row ``ky``
    the weight of element ``r * S + i`` of that row as the map stores it (0 for a pad channel and
    past the row's end). A walked row is a window row, or the whole window when its slices span
    window rows."""
    layer, d = plan.layer, plan.descriptor
    outputs = layer.weights_shape[0]
    rows, pixels, channels, stored = plan.spread
    bits = unpack_bits(layer.weights, layer.fan_in).reshape(outputs, rows, pixels, channels)
    bits = np.pad(bits, ((0, d.groups * pe - outputs), (0, 0), (0, 0), (0, stored - channels)))
    bits = bits.reshape(d.groups * pe, rows, pixels * stored)
    return np.pad(bits, ((0, 0), (0, 0), (0, d.slices * simd - pixels * stored)))


def _weight_words(plans, pe, simd):
    """Per layer, group, window row and slice: the word of P x S weight bits, PE ``p`` at bits
    ``[p*S, (p+1)*S)``."""
    words = []
    for plan in plans:
        bits = _window_bits(plan, pe, simd)
        for group in range(plan.descriptor.groups):
            for row in range(plan.descriptor.rows):
                for s in range(plan.descriptor.slices):
                    block = bits[group * pe:(group + 1) * pe, row, s * simd:(s + 1) * simd]
                    words.append(int.from_bytes(np.packbits(block.ravel(), bitorder="little").tobytes(), "little"))
    return tuple(words)


def _start_words(starts, pe, start_width):
    mask = (1 << start_width) - 1
    return tuple(sum((v & mask) << (p * start_width) for p, v in enumerate(values[g * pe:(g + 1) * pe]))
                 for values in starts for g in range(len(values) // pe))


def _fit(name, needed, capacity):
    if capacity is None:
        return needed
    if needed > capacity:
        raise CompileError(f"the model needs {needed} {name} but the engine has {capacity}")
    return capacity


def compile_model(model, *, pe, simd, tree_stages=0, pixels_per_beat=None, capacity=None, conv=None):
    """Lay out ``model`` (a validated :class:`model.modelfile.BinaryModel`) for a P x S engine.

    Parameters
    ----------
    pe, simd : int
        P and S; ``simd`` must be a multiple of ``pe`` (each neuron group's P output bits then
        fall into one activation word).
    tree_stages : int
        Pipeline registers per popcount tree (each adds one cycle per layer).
    pixels_per_beat : int or None
        Pixels per input-stream transfer, a divisor of ``simd``; default ``gcd(simd, 8)``.
    capacity : dict or None
        Sizes of an existing engine to fit into (keys :data:`layout.params.CAPACITY_KEYS`, the
        :class:`layout.params.EngineParams` fields of the same names); missing keys are sized to fit
        the model (``gather_rows``: :func:`gather_rows_used`, 1 for an engine without ``conv``).
    conv : bool or None
        The engine's kind (:attr:`layout.params.EngineParams.conv`): a ``conv`` engine, which runs
        any network (a fully connected layer is one window), or one for fully connected networks
        only. None: a ``conv`` engine if and only if the model has convolutions or pools.

    Raises
    ------
    layout.params.CompileError
        On invalid P, S, beat width or tree stages (:func:`layout.params.check_folding`), a ``conv``
        engine and S not a power of two, a model with convolutions and ``conv`` False, or a model
        that does not fit ``capacity``.
    """
    pixels_per_beat = check_folding(pe, simd, pixels_per_beat=pixels_per_beat, tree_stages=tree_stages)
    capacity = check_capacity(capacity)
    if conv is None:
        conv = not model.is_dense
    elif not conv and not model.is_dense:
        raise CompileError(f"{model.arch} has convolutions or pools, but the engine runs fully connected "
                           f"networks only")
    if conv and simd & (simd - 1):
        raise CompileError(f"a convolutional network ({model.arch}) needs S a power of two, not {simd}")

    if not conv and capacity.get("gather_rows", 1) != 1:
        raise CompileError(f"gather_rows applies to an engine with convolutions, not to one for {model.arch}")
    gather_rows = capacity.get("gather_rows", gather_rows_used(model, pe, simd) if conv else 1)
    plans = _plan(model, pe, simd, conv, gather_rows)
    descriptors = tuple(plan.descriptor for plan in plans)
    starts = _starts(model, plans, pe, simd)
    acc_bits, start_bits, score_bits = _widths(model, plans, simd)
    acc_width = _fit("accumulator bits", acc_bits, capacity.get("acc_width"))
    start_width = _fit("start value bits", start_bits, capacity.get("start_width"))
    score_width = _fit("score bits", score_bits, capacity.get("score_width"))
    weight_words = _weight_words(plans, pe, simd)
    start_words = _start_words(starts, pe, start_width)
    params = EngineParams(
        pe=pe, simd=simd, input_bits=model.input.bits, pixels_per_beat=pixels_per_beat,
        tree_stages=tree_stages, acc_width=acc_width, start_width=start_width, score_width=score_width,
        weight_depth=_fit("weight words", len(weight_words), capacity.get("weight_depth")),
        start_depth=_fit("start words", len(start_words), capacity.get("start_depth")),
        input_words=_fit("input words", -(-model.input.size // simd), capacity.get("input_words")),
        act_words=_fit("activation words", max([-(-p.out_bits // simd) for p in plans[:-1]], default=1),
                       capacity.get("act_words")),
        max_layers=_fit("layers", len(descriptors), capacity.get("max_layers")),
        score_count=_fit("score registers", descriptors[-1].groups * pe, capacity.get("score_count")),
        conv=conv, gather_rows=gather_rows,
    )
    image = NetworkImage(descriptors, weight_words, start_words, model.input.size,
                         model.input.threshold or 0, model.classes)
    return CompiledModel(params, image)


def foldings(max_lanes=MAX_LANES):
    """Every ``(pe, simd)`` of powers of two with S a multiple of P and P * S <= ``max_lanes``."""
    pe = 1
    while pe * pe <= max_lanes:
        simd = pe
        while pe * simd <= max_lanes:
            yield pe, simd
            simd *= 2
        pe *= 2


def choose_folding(model, *, max_cycles, tree_stages=0, max_lanes=MAX_LANES, gather_rows=None):
    """The smallest P x S (powers of two, S a multiple of P, P * S <= ``max_lanes``) whose cycles
    per frame for ``model`` are at most ``max_cycles``; ties go to fewer cycles, then to fewer PEs.
    A model with convolutions is timed with ``gather_rows`` (None: as many as it uses).

    Returns ``(pe, simd)``; raises :class:`layout.params.CompileError` with the fastest candidate's figure if
    none is fast enough.
    """
    check_positive("max_cycles", max_cycles)
    candidates = []
    for pe, simd in foldings(max_lanes):
        descriptors = _descriptors(model, pe, simd, gather_rows)
        cycles = cycles_per_frame(descriptors, layer_gap_cycles(tree_stages, conv=not model.is_dense),
                                  argmax_latency(descriptors[-1].groups * pe))
        candidates.append((pe * simd, cycles, pe, simd))
    fitting = [c for c in candidates if c[1] <= max_cycles]
    if not fitting:
        _, cycles, pe, simd = min(candidates, key=lambda c: (c[1], c[0]))
        raise CompileError(f"no P x S of at most {max_lanes} lanes reaches {max_cycles} cycles per frame; "
                           f"the fastest, {pe} x {simd}, needs {cycles}")
    _, _, pe, simd = min(fitting)
    return pe, simd

