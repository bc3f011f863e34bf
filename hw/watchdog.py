"""The engine's watchdog: a link whose engine stops producing results is stopped, not locked up."""

from amaranth.hdl import Assert, Assume, Cover, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out


class EngineWatchdog(wiring.Component):
    """Counts the frames in the engine and pulses ``expired`` when, while it holds one and its
    results can be taken, no result has come for ``cycles`` cycles: whatever a LOAD wrote into the
    engine's memories, the link stops it (and answers ABORTED) instead of waiting forever.

    Proved for the ``formal`` platform (:mod:`sim.proofs`): from any state, a frame in the engine
    never waits more than ``cycles`` cycles for a result, an expiry or a stop.

    Parameters
    ----------
    cycles : int
        :func:`layout.protocol.watchdog_cycles` of the engine (at least 2).
    most_frames : int
        The most frames the link can have fed and not yet taken a result of.

    Members
    -------
    fed : In(1)
        A frame's last byte went to the engine (a pulse).
    produced : In(1)
        The engine's result was taken (a pulse).
    blocked : In(1)
        The engine's results cannot be taken now (the result queue is full): its time does not count.
    stop : In(1)
        The engine is being reset, with its frames.
    expired : Out(1)
        A registered pulse.
    """

    def __init__(self, cycles, most_frames):
        if cycles < 2:
            raise ValueError(f"a watchdog needs at least 2 cycles, not {cycles!r}")
        self._cycles, self._most_frames = cycles, most_frames
        super().__init__({"fed": In(1), "produced": In(1), "blocked": In(1), "stop": In(1), "expired": Out(1)})

    def elaborate(self, platform):
        m = Module()
        frames = Signal(range(self._most_frames + 1))
        count = Signal(range(self._cycles + 1))
        with m.If(self.stop):
            m.d.sync += frames.eq(0)
        with m.Elif(self.fed & ~self.produced):
            m.d.sync += frames.eq(frames + 1)
        with m.Elif(self.produced & ~self.fed & (frames != 0)):
            m.d.sync += frames.eq(frames - 1)
        m.d.sync += self.expired.eq(0)
        with m.If(self.stop | self.produced | (frames == 0) | self.blocked):
            m.d.sync += count.eq(0)
        with m.Elif(count == self._cycles - 1):
            m.d.sync += [count.eq(0), self.expired.eq(1)]
        with m.Else():
            m.d.sync += count.eq(count + 1)
        if platform == "formal":
            self._properties(m, frames, count)
        return m

    def _properties(self, m, frames, count):
        # the link never feeds more frames than it counts
        m.d.comb += Assume(~self.fed | self.produced | self.stop | (frames != self._most_frames))
        # cycles in a row a frame has been in the engine, its results free to go, and nothing came
        # (no result, stop or expiry): at most `cycles`
        waiting = Signal(range(self._cycles + 2))
        starving = (frames != 0) & ~self.blocked & ~self.produced & ~self.stop & ~self.expired
        m.d.sync += waiting.eq(Mux(starving, Mux(waiting == self._cycles + 1, waiting, waiting + 1), 0))
        m.d.comb += [Assert(waiting <= self._cycles), Assert(count < self._cycles),
                     Assert(~starving | (waiting <= count)), Cover(self.expired)]
