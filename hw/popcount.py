"""Balanced adder trees: the population count of the processing elements and plain sums."""

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2


def tree_levels(width):
    """Number of adder levels of a balanced tree over ``width`` leaves."""
    return ceil_log2(width) if width > 1 else 0


def register_levels(levels, stages):
    """The adder levels after which a pipeline register goes, spread evenly over the tree.

    Returns a list of ``stages`` level numbers (``0`` means "on the leaves", ``levels`` means "on
    the root"); a level may repeat when there are more stages than levels.
    """
    return [-(-k * levels // stages) for k in range(1, stages + 1)]


def add_pairwise(values):
    """One level of a balanced tree: neighbours added pairwise, an odd last value passed on."""
    summed = [values[i] + values[i + 1] for i in range(0, len(values) - 1, 2)]
    if len(values) % 2:
        summed.append(values[-1])
    return summed


def balanced_sum(values):
    """Combinational sum of ``values`` as a balanced tree of depth ``ceil(log2(len))``."""
    values = list(values)
    while len(values) > 1:
        values = add_pairwise(values)
    return values[0]


class PopCount(wiring.Component):
    """Number of set bits of a word, as a balanced adder tree with ``stages`` pipeline registers.

    Parameters
    ----------
    width : int
        Bits counted.
    stages : int
        Pipeline registers inside the tree (0 = combinational), spread evenly over its
        ``ceil(log2(width))`` levels; the latency in cycles.

    Members
    -------
    bits : In(width)
        The word; ``count`` reflects it ``stages`` cycles later.
    count : Out(range(width + 1))
        Its population count.
    """

    def __init__(self, width, *, stages=0):
        if not isinstance(width, int) or width < 1:
            raise ValueError(f"popcount width must be a positive integer, not {width!r}")
        if not isinstance(stages, int) or stages < 0:
            raise ValueError(f"pipeline stages must be a non-negative integer, not {stages!r}")
        self._width = width
        self._stages = stages
        super().__init__({"bits": In(width), "count": Out(range(width + 1))})

    @property
    def width(self):
        return self._width

    @property
    def latency(self):
        """Cycles from ``bits`` to ``count``."""
        return self._stages

    def elaborate(self, platform):
        m = Module()
        levels = tree_levels(self._width)
        registers = register_levels(levels, self._stages)
        values = list(self.bits)
        for level in range(levels + 1):
            if level:
                values = add_pairwise(values)
            for index in range(registers.count(level)):
                staged = []
                for position, value in enumerate(values):
                    reg = Signal.like(value, name=f"l{level}_r{index}_{position}")
                    m.d.sync += reg.eq(value)
                    staged.append(reg)
                values = staged
        m.d.comb += self.count.eq(values[0])
        return m
