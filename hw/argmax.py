"""The argmax unit: index of the largest score, ties to the lowest index."""

from amaranth.hdl import Const, Module, Mux, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out


class Argmax(wiring.Component):
    """Combinational argmax over the first ``count`` of ``size`` signed scores.

    A balanced tree of comparisons; at each node the right candidate wins only if it is valid
    and strictly larger, so ties go to the lowest index (the golden model's ``np.argmax``).

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
        Index of the first largest valid score.
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
            "index": Out(range(max(size, 2))),
        })

    def elaborate(self, platform):
        m = Module()
        index_shape = range(max(self._size, 2))
        # (valid, index, score) candidates, reduced pairwise
        nodes = [(self.count > i, Const(i, index_shape), self.scores[i]) for i in range(self._size)]
        while len(nodes) > 1:
            reduced = []
            for left, right in zip(nodes[0::2], nodes[1::2]):
                right_wins = right[0] & (~left[0] | (right[2] > left[2]))
                reduced.append((left[0] | right[0], Mux(right_wins, right[1], left[1]),
                                Mux(right_wins, right[2], left[2])))
            if len(nodes) % 2:
                reduced.append(nodes[-1])
            nodes = reduced
        m.d.comb += self.index.eq(nodes[0][1])
        return m

