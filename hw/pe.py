"""The processing element (XNOR/AND-popcount accumulator), its threshold unit, and the P x S array."""

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .popcount import PopCount


class ProcessingElement(wiring.Component):
    """Accumulates one neuron's pre-activation ``y``, ``simd`` input lanes per cycle.

    Each cycle it counts the lanes where the operands match and adds ``2 * count << shift`` to
    its accumulator:

    * XNOR mode (``and_mode = 0``, {-1,+1} inputs): ``count = popcount(~(x ^ w))``, shift 0;
    * AND mode (8-bit inputs, one bit plane ``b`` per cycle): ``count = popcount(x & w)``,
      shift ``b``.

    The accumulator starts from ``bias`` on a ``first`` cycle. The caller picks the bias that
    turns the sum into ``y`` exactly (see ``docs/engine.md``): ``-(2 * lanes_read - fan_in)``
    in XNOR mode, which also cancels the pad lanes (pad bits are 0 in both operands, so they
    match), and ``-sum(pixels)`` in AND mode (pad pixels are 0 and add nothing).

    Timing: ``x``, ``w`` and ``and_mode`` are sampled at cycle ``c``; the popcount tree has
    ``stages`` registers, and the controls ``valid``, ``first``, ``shift`` and ``bias`` that
    belong to them are sampled at cycle ``c + stages``. ``total`` (combinational) is the
    accumulator value including that cycle's term; it is stored when ``valid``.

    Members
    -------
    x, w : In(simd)
        Input and weight slices, lane ``i`` = bit ``i``.
    and_mode : In(1)
    valid, first : In(1)
    shift : In(range(8))
    bias : In(signed(acc_width))
    total : Out(signed(acc_width))
    """

    def __init__(self, simd, acc_width, *, stages=0):
        if not isinstance(acc_width, int) or acc_width < 2:
            raise ValueError(f"accumulator width must be an integer of at least 2, not {acc_width!r}")
        self._popcount = PopCount(simd, stages=stages)
        super().__init__({
            "x": In(simd), "w": In(simd), "and_mode": In(1),
            "valid": In(1), "first": In(1), "shift": In(range(8)),
            "bias": In(signed(acc_width)), "total": Out(signed(acc_width)),
        })

    @property
    def latency(self):
        """Cycles from the operands to the controls and ``total`` that belong to them."""
        return self._popcount.latency

    def elaborate(self, platform):
        m = Module()
        m.submodules.popcount = popcount = self._popcount
        m.d.comb += popcount.bits.eq(Mux(self.and_mode, self.x & self.w, ~(self.x ^ self.w)))
        accumulator = Signal.like(self.total)
        term = (popcount.count << 1) << self.shift
        m.d.comb += self.total.eq(Mux(self.first, self.bias, accumulator) + term)
        with m.If(self.valid):
            m.d.sync += accumulator.eq(self.total)
        return m


class ThresholdUnit(wiring.Component):
    """Turns a finished pre-activation into an activation bit: 1 (+1) iff ``total >= threshold``.

    Members
    -------
    total, threshold : In(signed(width))
    fire : Out(1)
    """

    def __init__(self, width):
        super().__init__({"total": In(signed(width)), "threshold": In(signed(width)), "fire": Out(1)})

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.fire.eq(self.total >= self.threshold)
        return m


class ProcessingElementArray(wiring.Component):
    """P processing elements and their threshold units, sharing the input slice and the controls.

    Timing as for :class:`ProcessingElement`: ``x``, ``weights`` and ``and_mode`` at cycle ``c``,
    the controls, ``thresholds``, ``totals`` and ``fires`` at ``c + stages``.

    Members
    -------
    x : In(simd)
    weights : In(pe * simd)
        PE ``p``'s weight slice at bits ``[p*simd, (p+1)*simd)``.
    and_mode, valid, first : In(1)
    shift : In(range(8))
    bias : In(signed(acc_width))
    thresholds : In(pe * acc_width)
        PE ``p``'s threshold (two's complement) at bits ``[p*acc_width, (p+1)*acc_width)``.
    totals : Out(ArrayLayout(signed(acc_width), pe))
    fires : Out(pe)
        Bit ``p``: ``totals[p] >= threshold p``.
    """

    def __init__(self, pe, simd, acc_width, *, stages=0):
        if not isinstance(pe, int) or pe < 1:
            raise ValueError(f"PE count must be a positive integer, not {pe!r}")
        self._elements = [ProcessingElement(simd, acc_width, stages=stages) for _ in range(pe)]
        self._simd, self._width = simd, acc_width
        super().__init__({
            "x": In(simd), "weights": In(pe * simd), "and_mode": In(1),
            "valid": In(1), "first": In(1), "shift": In(range(8)), "bias": In(signed(acc_width)),
            "thresholds": In(pe * acc_width),
            "totals": Out(data.ArrayLayout(signed(acc_width), pe)), "fires": Out(pe),
        })

    def elaborate(self, platform):
        m = Module()
        simd, width = self._simd, self._width
        for p, element in enumerate(self._elements):
            m.submodules[f"pe{p}"] = element
            m.submodules[f"threshold{p}"] = threshold = ThresholdUnit(width)
            m.d.comb += [
                element.x.eq(self.x),
                element.w.eq(self.weights[p * simd:(p + 1) * simd]),
                element.and_mode.eq(self.and_mode),
                element.valid.eq(self.valid),
                element.first.eq(self.first),
                element.shift.eq(self.shift),
                element.bias.eq(self.bias),
                threshold.total.eq(element.total),
                threshold.threshold.eq(self.thresholds[p * width:(p + 1) * width].as_signed()),
                self.totals[p].eq(element.total),
                self.fires[p].eq(threshold.fire),
            ]
        return m
