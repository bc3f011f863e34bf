"""The argmax unit: index of the largest score, ties to the lowest index."""

from amaranth.hdl import C, Cat, Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from layout.rows import index_shape


class Argmax(wiring.Component):
    """Pipelined argmax over the first ``count`` of ``size`` signed scores.

    A balanced tree of comparisons with a register after each of its ``ceil(log2(size))``
    levels; at each node the right candidate wins only if it is valid and strictly larger, so
    ties go to the lowest index (the golden model's ``np.argmax``).

    Parameters
    ----------
    size : int
        Score registers compared.
    width : int
        Width of one signed score.

    Members
    -------
    scores : In(ArrayLayout(signed(width), size))
    count : In(range(size + 1))
        How many leading scores are valid (at least 1).
    index : Out(range(size))
        Index of the first largest valid score among ``scores`` and ``count`` of ``latency``
        cycles earlier.
    """

    def __init__(self, size, width):
        if not isinstance(size, int) or size < 1:
            raise ValueError(f"argmax size must be a positive integer, not {size!r}")
        if not isinstance(width, int) or width < 1:
            raise ValueError(f"score width must be a positive integer, not {width!r}")
        self._size = size
        super().__init__({
            "scores": In(data.ArrayLayout(signed(width), size)),
            "count": In(range(size + 1)),
            "index": Out(index_shape(size)),
        })

    @property
    def latency(self):
        """Cycles from ``scores`` to ``index``: one per tree level."""
        return ceil_log2(self._size)

    def elaborate(self, platform):
        m = Module()
        # (valid, index within the node's span of leaves, zero bits above it, score) candidates,
        # reduced pairwise, one level per cycle. Node n of level L spans leaves [n * 2**L,
        # (n + 1) * 2**L), so a winner's index is the child's index plus one bit saying which child
        # won; a last, unpaired node passes on as a left child (a 0 bit, kept out of its registers
        # with any it already had). Only decision bits are registered: a register with constant
        # bits would leave a mixed wire that costs the CXXRTL back end delta cycles.
        nodes = [(self.count > i, C(0, 0), 0, self.scores[i]) for i in range(self._size)]
        level = 0
        while len(nodes) > 1:
            reduced = []
            for n, (left, right) in enumerate(zip(nodes[0::2], nodes[1::2])):
                right_wins = right[0] & (~left[0] | (right[3] > left[3]))
                index = Cat(Mux(right_wins, Cat(right[1], C(0, right[2])), Cat(left[1], C(0, left[2]))), right_wins)
                valid, index, score = self._register(m, f"l{level}_{n}", left[0] | right[0], index,
                                                     Mux(right_wins, right[3], left[3]))
                reduced.append((valid, index, 0, score))
            if len(nodes) % 2:
                valid, index, zeros, score = nodes[-1]
                valid, index, score = self._register(m, f"l{level}_{len(reduced)}", valid, index, score)
                reduced.append((valid, index, zeros + 1, score))
            nodes = reduced
            level += 1
        m.d.comb += self.index.eq(Cat(nodes[0][1], C(0, nodes[0][2])))
        return m

    @staticmethod
    def _register(m, name, valid, index, score):
        registers = (Signal(name=f"{name}_valid"), Signal(len(index), name=f"{name}_index"),
                     Signal(score.shape(), name=f"{name}_score"))
        m.d.sync += [r.eq(v) for r, v in zip(registers, (valid, index, score))]
        return registers
