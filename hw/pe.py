"""The processing element (XNOR/AND-popcount accumulator) and the P x S array of them."""

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from layout.params import PLANES

from .popcount import PopCount

# What a PE does with a cycle's operands, shared by every PE of an array. ``valid``: the
# accumulator stores the cycle's total; ``first``: the total starts from the start value instead
# of the accumulator (a neuron group's first term); ``shift``: the count is shifted by it (the bit
# plane in a bit-serial layer, 1 in an XNOR layer). Timing: see :class:`ProcessingElement`.
control_layout = data.StructLayout({"valid": 1, "first": 1, "shift": range(PLANES)})


class ProcessingElement(wiring.Component):
    """Accumulates one neuron's value, ``simd`` input lanes per cycle; its activation is the sign.

    Each cycle it counts the lanes where the operands match, ``count = popcount(~(x ^ w))``, and
    adds ``count << shift`` to its accumulator: shift 1 in an XNOR layer ({-1,+1} inputs, a
    match adds 2), shift ``b`` for bit plane ``b`` of 8-bit pixels in a bit-serial layer.

    The accumulator starts from ``start`` on a ``first`` cycle. The caller picks the start value
    that turns the final sum into ``y - threshold`` (``y`` for an output neuron) exactly, see
    ``docs/engine.md``; the activation bit ``fire`` is then 1 (+1) iff the sum is ``>= 0``
    (sign(0) = +1), the model file's ``y >= threshold``.

    Timing: ``x`` and ``w`` are sampled at cycle ``c``; ``stages`` pipeline registers lie between
    them and the accumulator, so ``control.valid``, ``control.first`` and ``start`` that belong to
    them are sampled at ``c + stages`` (``latency``). With ``stages >= 1`` the last register holds
    the shifted count (the popcount tree has the others), which keeps the shift off the adder's
    path, and ``control.shift`` is sampled at ``c + stages - 1`` (``shift_latency``); with none,
    at ``c``. ``total`` and ``fire`` (combinational) include that cycle's term; the accumulator
    stores ``total`` when ``control.valid``.

    Members
    -------
    x, w : In(simd)
        Input and weight slices, lane ``i`` = bit ``i``.
    control : In(control_layout)
    start : In(signed(acc_width))
    total : Out(signed(acc_width))
    fire : Out(1)
    """

    def __init__(self, simd, acc_width, *, stages=0):
        if not isinstance(acc_width, int) or acc_width < 2:
            raise ValueError(f"accumulator width must be an integer of at least 2, not {acc_width!r}")
        if not isinstance(stages, int) or stages < 0:
            raise ValueError(f"pipeline stages must be a non-negative integer, not {stages!r}")
        self._stages = stages
        self._popcount = PopCount(simd, stages=max(stages - 1, 0))
        super().__init__({
            "x": In(simd), "w": In(simd), "control": In(control_layout),
            "start": In(signed(acc_width)), "total": Out(signed(acc_width)), "fire": Out(1),
        })

    @property
    def latency(self):
        """Cycles from the operands to ``control.valid``, ``control.first``, ``start`` and ``total``
        that belong to them."""
        return self._stages

    @property
    def shift_latency(self):
        """Cycles from the operands to the ``control.shift`` that belongs to them."""
        return self._popcount.latency

    def elaborate(self, platform):
        m = Module()
        m.submodules.popcount = popcount = self._popcount
        m.d.comb += popcount.bits.eq(~(self.x ^ self.w))
        accumulator = Signal.like(self.total)
        term = Signal(len(popcount.count) + 7, reset_less=True)
        shifted = popcount.count << self.control.shift
        if self._stages:
            m.d.sync += term.eq(shifted)
        else:
            m.d.comb += term.eq(shifted)
        m.d.comb += [
            self.total.eq(Mux(self.control.first, self.start, accumulator) + term),
            self.fire.eq(~self.total[-1]),
        ]
        with m.If(self.control.valid):
            m.d.sync += accumulator.eq(self.total)
        return m


class ProcessingElementArray(wiring.Component):
    """P processing elements sharing the input slice and the controls.

    Timing as for :class:`ProcessingElement`: ``x`` and ``weights`` at cycle ``c``,
    ``control.shift`` at ``c + max(stages - 1, 0)``, ``control.valid``, ``control.first``,
    ``starts``, ``totals`` and ``fires`` at ``c + stages``.

    Members
    -------
    x : In(simd)
    weights : In(pe * simd)
        PE ``p``'s weight slice at bits ``[p*simd, (p+1)*simd)``.
    control : In(control_layout)
        Every PE's.
    starts : In(ArrayLayout(signed(acc_width), pe))
    totals : Out(ArrayLayout(signed(acc_width), pe))
    fires : Out(pe)
        Bit ``p``: ``totals[p] >= 0``.
    """

    def __init__(self, pe, simd, acc_width, *, stages=0):
        if not isinstance(pe, int) or pe < 1:
            raise ValueError(f"PE count must be a positive integer, not {pe!r}")
        self._elements = [ProcessingElement(simd, acc_width, stages=stages) for _ in range(pe)]
        self._simd = simd
        super().__init__({
            "x": In(simd), "weights": In(pe * simd), "control": In(control_layout),
            "starts": In(data.ArrayLayout(signed(acc_width), pe)),
            "totals": Out(data.ArrayLayout(signed(acc_width), pe)), "fires": Out(pe),
        })

    @property
    def latency(self):
        """Cycles from ``x``/``weights`` to ``control.valid``, ``control.first``, ``starts`` and
        ``totals`` (see the PE)."""
        return self._elements[0].latency

    @property
    def shift_latency(self):
        """Cycles from ``x``/``weights`` to the ``control.shift`` that belongs to them."""
        return self._elements[0].shift_latency

    def elaborate(self, platform):
        m = Module()
        simd = self._simd
        for p, element in enumerate(self._elements):
            m.submodules[f"pe{p}"] = element
            m.d.comb += [
                element.x.eq(self.x),
                element.w.eq(self.weights[p * simd:(p + 1) * simd]),
                element.control.eq(self.control),
                element.start.eq(self.starts[p]),
                self.totals[p].eq(element.total),
                self.fires[p].eq(element.fire),
            ]
        return m
