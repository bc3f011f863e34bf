"""The processing element (XNOR/AND-popcount accumulator) and the P x S array of them."""

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .popcount import PopCount


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
    them and the accumulator, so the controls ``valid``, ``first`` and ``start`` that belong to
    them are sampled at ``c + stages`` (``latency``). With ``stages >= 1`` the last register holds
    the shifted count (the popcount tree has the others), which keeps the shift off the adder's
    path, and ``shift`` is sampled at ``c + stages - 1``; with none, at ``c``. ``total`` and
    ``fire`` (combinational) include that cycle's term; the accumulator stores ``total`` when
    ``valid``.

    Members
    -------
    x, w : In(simd)
        Input and weight slices, lane ``i`` = bit ``i``.
    valid, first : In(1)
    shift : In(range(8))
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
            "x": In(simd), "w": In(simd),
            "valid": In(1), "first": In(1), "shift": In(range(8)),
            "start": In(signed(acc_width)), "total": Out(signed(acc_width)), "fire": Out(1),
        })

    @property
    def latency(self):
        """Cycles from the operands to the controls and ``total`` that belong to them."""
        return self._stages

    @property
    def shift_latency(self):
        """Cycles from the operands to the ``shift`` that belongs to them."""
        return self._popcount.latency

    def elaborate(self, platform):
        m = Module()
        m.submodules.popcount = popcount = self._popcount
        m.d.comb += popcount.bits.eq(~(self.x ^ self.w))
        accumulator = Signal.like(self.total)
        term = Signal(len(popcount.count) + 7, reset_less=True)
        shifted = popcount.count << self.shift
        if self._stages:
            m.d.sync += term.eq(shifted)
        else:
            m.d.comb += term.eq(shifted)
        m.d.comb += [
            self.total.eq(Mux(self.first, self.start, accumulator) + term),
            self.fire.eq(~self.total[-1]),
        ]
        with m.If(self.valid):
            m.d.sync += accumulator.eq(self.total)
        return m


class ProcessingElementArray(wiring.Component):
    """P processing elements sharing the input slice and the controls.

    Timing as for :class:`ProcessingElement`: ``x`` and ``weights`` at cycle ``c``, ``shift`` at
    ``c + max(stages - 1, 0)``, the other controls, ``starts``, ``totals`` and ``fires`` at
    ``c + stages``.

    Members
    -------
    x : In(simd)
    weights : In(pe * simd)
        PE ``p``'s weight slice at bits ``[p*simd, (p+1)*simd)``.
    valid, first : In(1)
    shift : In(range(8))
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
            "x": In(simd), "weights": In(pe * simd),
            "valid": In(1), "first": In(1), "shift": In(range(8)),
            "starts": In(data.ArrayLayout(signed(acc_width), pe)),
            "totals": Out(data.ArrayLayout(signed(acc_width), pe)), "fires": Out(pe),
        })

    @property
    def latency(self):
        """Cycles from ``x``/``weights`` to the controls, ``starts`` and ``totals`` (see the PE)."""
        return self._elements[0].latency

    @property
    def shift_latency(self):
        """Cycles from ``x``/``weights`` to the ``shift`` that belongs to them."""
        return self._elements[0].shift_latency

    def elaborate(self, platform):
        m = Module()
        simd = self._simd
        for p, element in enumerate(self._elements):
            m.submodules[f"pe{p}"] = element
            m.d.comb += [
                element.x.eq(self.x),
                element.w.eq(self.weights[p * simd:(p + 1) * simd]),
                element.valid.eq(self.valid),
                element.first.eq(self.first),
                element.shift.eq(self.shift),
                element.start.eq(self.starts[p]),
                self.totals[p].eq(element.total),
                self.fires[p].eq(element.fire),
            ]
        return m
