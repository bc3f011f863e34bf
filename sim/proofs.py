"""The properties proved about the gateware (:data:`PROOFS`, run by :mod:`sim.formal`), and the known
defects each must catch (:data:`MUTANTS`). ``bench/formal.py`` runs them all; docs/formal.md says what
each proves and what is not proved.

Each proof puts one component in a harness whose inputs are free: any byte, any handshake, in any
cycle. The UART receiver, the request receiver and the engine watchdog state their properties
themselves, for the ``formal`` platform, next to the logic they speak of (their ``_properties``); the
counter bank and the engine are checked by the harnesses below, against a reference and the stream rules.

The configuration is the iCEBreaker's link as the README's board table builds it (:data:`ICEBREAKER`):
its clock at 3 Mbaud (10 cycles a bit), the receiver's memories, frame size and watchdog those of its row's
network (784-64-64-64-10 at 4 x 32); the receive timeout is shortened to :data:`PROOF_TIMEOUT_CYCLES` (the
logic is the same for any timeout; the 10 ms one would take 300,000 cycles to unroll).
"""

import dataclasses
import functools
import importlib
import inspect

from amaranth.hdl import Assert, Assume, Cat, Cover, Elaboratable, Module, Mux, Signal, Value
from amaranth.lib import wiring

import hw.counters
import hw.receiver
import hw.uart
import hw.watchdog
from hw.counters import CounterBank
from hw.boards import board
from hw.engine import Engine
from hw.receiver import RequestReceiver
from hw.uart import UartRx
from hw.watchdog import EngineWatchdog
from layout.compiler import compile_model
from layout.images import link_memories
from layout.protocol import FRAMES_IN_FLIGHT, MAX_INFER_FRAMES, frame_bytes, watchdog_cycles
from model.random_models import random_model

from .formal import Proof

_BOARD = board("icebreaker")
ICEBREAKER = {"clock_hz": round(_BOARD.clock_mhz * 1e6), "baud": 3_000_000,    # (`bnn build`'s default rate)
              "arch": (784, 64, 64, 64, 10), "input_bits": 8, "pe": 4, "simd": 32, "tree_stages": _BOARD.tree_stages}
PROOF_TIMEOUT_CYCLES = 6
COVER_DIVISOR = 4


class Harness(Elaboratable):
    """``component`` with every input port driven by a free top-level input."""

    def __init__(self, component, domain):
        self._component, self._domain = component, domain
        self._ports = [(path, port) for path, member, port in component.signature.flatten(component)
                       if member.flow == wiring.In]
        self.inputs = [Signal(len(Value.cast(port)), name="__".join(map(str, path))) for path, port in self._ports]

    def elaborate(self, platform):
        m = Module()
        m.domains.sync = self._domain
        m.submodules.dut = self._component
        m.d.comb += [Value.cast(port).eq(free) for (_, port), free in zip(self._ports, self.inputs)]
        return m


def _harness(make):
    def build(domain):
        harness = Harness(make(), domain)
        return harness, harness.inputs
    return build


@functools.cache
def _icebreaker_params():
    """The engine parameters of the iCEBreaker row (a random model of its shape)."""
    config = ICEBREAKER
    return compile_model(random_model(list(config["arch"]), input_bits=config["input_bits"]),
                         pe=config["pe"], simd=config["simd"], tree_stages=config["tree_stages"]).params


def icebreaker_receiver_sizes():
    """``(memories, max_frame_bytes)`` of the iCEBreaker row's receiver."""
    params = _icebreaker_params()
    return link_memories(params), frame_bytes(params.input_bits, params.input_words * params.simd)


def icebreaker_watchdog_cycles():
    params = _icebreaker_params()
    return watchdog_cycles(weight_depth=params.weight_depth, max_layers=params.max_layers,
                           input_words=params.input_words, act_words=params.act_words, simd=params.simd,
                           tree_stages=params.tree_stages, conv=params.conv)


def _watchdog(cls=EngineWatchdog):
    # (the link's frames in flight: hw.link.LinkCore)
    return cls(icebreaker_watchdog_cycles(), MAX_INFER_FRAMES + FRAMES_IN_FLIGHT + 2)


def _bank_harness(domain, bank=CounterBank):
    harness = CounterBankHarness(PROOF_COUNTERS, domain, bank)
    return harness, harness.inputs


COUNTERS_DEPTH = 32


def _receiver(cls=RequestReceiver):
    memories, max_frame = icebreaker_receiver_sizes()
    return cls(memories, max_frame_bytes=max_frame, timeout_cycles=PROOF_TIMEOUT_CYCLES, model_loaded=True)


class CounterBankHarness(Elaboratable):
    """A :class:`hw.counters.CounterBank` under its contract (assumed), against a reference: counters
    as plain registers, and the snapshot each STATUS copy must deliver, byte for byte.

    Events of a counter are assumed at least :data:`EVENT_SPACING` cycles apart (a stronger bound
    than the contract's 7 in ``4 * bytes + 4`` cycles), snapshots and clears ``3 * bytes + 4``.
    """

    EVENT_SPACING = 3

    def __init__(self, counters, domain, bank=CounterBank):
        self._counters, self._domain = counters, domain
        self.bank = bank(counters)
        self.events = Signal(len(counters))
        self.clear, self.snapshot = Signal(), Signal()
        self.inputs = [self.events, self.clear, self.snapshot]

    def elaborate(self, platform):
        m = Module()
        m.domains.sync = self._domain
        m.submodules.bank = bank = self.bank
        size = sum(n for _, n in self._counters)
        m.d.comb += [bank.events.as_value().eq(self.events), bank.clear.eq(self.clear),
                     bank.snapshot.eq(self.snapshot)]
        # the contract
        spacing = 3 * size + 4
        since_request = Signal(range(spacing + 1), init=spacing)
        m.d.sync += since_request.eq(Mux(self.clear | self.snapshot, 0,
                                         Mux(since_request == spacing, spacing, since_request + 1)))
        m.d.comb += [Assume(~(self.clear | self.snapshot) | (since_request == spacing)),
                     Assume(~self.snapshot | bank.snapshot_ready)]
        for i in range(len(self._counters)):
            since_event = Signal(range(self.EVENT_SPACING + 1), init=self.EVENT_SPACING)
            m.d.sync += since_event.eq(Mux(self.events[i], 1, Mux(since_event == self.EVENT_SPACING,
                                                                   since_event, since_event + 1)))
            m.d.comb += Assume(~self.events[i] | (since_event == self.EVENT_SPACING))
        # the reference: every counter's value, and the snapshot's payload bytes
        values = [Signal(8 * n, name=f"value_{name}") for name, n in self._counters]
        for i, value in enumerate(values):
            m.d.sync += value.eq(Mux(self.clear, 0, value + self.events[i]))
        snap = Signal(8 * size)
        with m.If(self.snapshot):
            m.d.sync += snap.eq(Cat(*((value + self.events[i])[:len(value)] for i, value in enumerate(values))))
        # each copy write: the snapshot's byte; a copy is whole when the bank is ready again
        copying, written = Signal(), Signal(size)
        with m.If(self.snapshot):
            m.d.sync += [copying.eq(1), written.eq(0)]
        with m.If(bank.copy.en):
            m.d.comb += Assert(bank.copy.data == snap.word_select(bank.copy.addr, 8))
            m.d.sync += written.eq(written | (1 << bank.copy.addr))
        with m.If(copying & bank.snapshot_ready):
            m.d.comb += Assert(written == (1 << size) - 1)
            m.d.sync += copying.eq(0)
        # not vacuous: a copy of a counter that counted after a clear
        m.d.comb += Cover(bank.copy.en & (bank.copy.data != 0) & (since_request > 2 * size))
        return m


PROOF_COUNTERS = (("frames", 2), ("errors", 1))     # three bytes, a counter of two: a carry between bytes


class EngineHarness(Harness):
    """A loadable :class:`hw.engine.Engine` with free inputs under its load contract (writes only while it
    holds no frame: here, after a ``clear`` and before the next frame's first beat; a ``clear`` after
    them before a beat), whose ``results`` stream must keep the stream rules: a result offered stays,
    unchanged, until taken (or the engine is cleared). Between a write and the ``clear`` after it the
    engine's state is undefined (the link drops what it puts out then) and is not checked."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        engine = self._component
        beat = engine.pixels.valid & engine.pixels.ready
        fed, loaded = Signal(), Signal()       # a beat since the last clear; a write since the last clear
        with m.If(engine.clear):
            m.d.sync += [fed.eq(0), loaded.eq(0)]
        with m.Else():
            with m.If(beat):
                m.d.sync += fed.eq(1)
            with m.If(engine.load.en):
                m.d.sync += loaded.eq(1)
        m.d.comb += [Assume(~engine.load.en | ~fed), Assume(~engine.pixels.valid | ~loaded | engine.clear)]
        waited, held, cleared = Signal(), Signal.like(engine.results.payload), Signal()
        m.d.sync += [waited.eq(engine.results.valid & ~engine.results.ready), held.eq(engine.results.payload),
                     cleared.eq(engine.clear)]
        with m.If(waited & ~cleared & ~loaded):
            m.d.comb += [Assert(engine.results.valid),
                         Assert(engine.results.payload.as_value() == held.as_value())]
        m.d.comb += Cover(engine.results.valid & ~engine.results.ready)
        return m


@functools.cache
def _tiny_engine_model():
    return compile_model(random_model(list(TINY_ENGINE["arch"]), input_bits=8), pe=TINY_ENGINE["pe"],
                         simd=TINY_ENGINE["simd"])


def _engine_harness(domain):
    harness = EngineHarness(Engine(_tiny_engine_model(), loadable=True), domain)
    return harness, harness.inputs


TINY_ENGINE = {"arch": (16, 8, 4), "pe": 2, "simd": 8}
ENGINE_DEPTH = 24


ICEBREAKER_DIVISOR = round(ICEBREAKER["clock_hz"] / ICEBREAKER["baud"])

PROOFS = (
    Proof("uart_rx", "hw.uart.UartRx",
          "from any state, idle after a frame time of 1s on the line; a byte on `data` held unchanged until taken",
          _harness(lambda: UartRx(ICEBREAKER_DIVISOR)), "prove", 3),
    Proof("uart_rx_cover", "hw.uart.UartRx",
          f"a byte, a framing error and an overrun are each reachable (at {COVER_DIVISOR} cycles a bit)",
          _harness(lambda: UartRx(COVER_DIVISOR)), "cover", 21 * COVER_DIVISOR + 4, quick=False),
    Proof("receiver", "hw.receiver.RequestReceiver",
          "from any state and any bytes: back to hunting after the timeout; the line held only by the header "
          "check, a waiting token or the engine; one token per request with its code and sequence number; "
          "a well-formed RESET answered OK, counters reset, engine stopped",
          _harness(_receiver), "prove", 2),
    Proof("watchdog", "hw.watchdog.EngineWatchdog",
          "from any state, a frame in the engine whose results can go waits at most the watchdog's cycles for a "
          "result, a stop or an expiry, whatever the engine does",
          _harness(_watchdog), "prove", 2),
    Proof("counters", "hw.counters.CounterBank",
          "under its contract, every STATUS copy is the counters' values in the cycle of its request, byte "
          "for byte, and whole before the bank is ready again",
          lambda domain: _bank_harness(domain), "bmc", COUNTERS_DEPTH, quick=False),
    Proof("engine_results", "hw.engine.Engine",
          f"a loadable engine ({'-'.join(map(str, TINY_ENGINE['arch']))} at {TINY_ENGINE['pe']} x "
          f"{TINY_ENGINE['simd']}), any memory contents loaded and any pixels: a result offered stays, unchanged, "
          "until taken or the engine is cleared",
          _engine_harness, "bmc", ENGINE_DEPTH, quick=False),
    Proof("receiver_cover", "hw.receiver.RequestReceiver",
          "every command answered OK, every status, a LOAD of every target: each reachable",
          _harness(_receiver), "cover", 40, quick=False),
)


@dataclasses.dataclass(frozen=True)
class Mutant:
    """A component with a known defect brought back, the proof that must then fail, and the text of
    the assertion that must fail (in the component's source line)."""
    name: str
    defect: str
    proof: Proof
    fails: str


def patched(module, old, new):
    """A copy of ``module`` (imported afresh from its source) with the text ``old`` replaced by ``new``."""
    source = inspect.getsource(module)
    if source.count(old) != 1:
        raise ValueError(f"{module.__name__}: the text to replace occurs {source.count(old)} times, not once: {old!r}")
    copy = importlib.util.module_from_spec(importlib.util.spec_from_loader(module.__name__, loader=None))
    copy.__package__ = module.__package__
    exec(compile(source.replace(old, new), inspect.getsourcefile(module), "exec"), copy.__dict__)
    return copy


class PaddingReceiver(RequestReceiver):
    """The receiver as it was when an independent host found bytes lost after a padded frame: a
    frame cut short holds the line for a frame's bytes (then, zeros were fed to fill it)."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        padding = Signal(range(self._max_frame_bytes + 1))
        with m.If(self.discard):
            m.d.sync += padding.eq(self._max_frame_bytes)
        with m.Elif(padding != 0):
            m.d.sync += padding.eq(padding - 1)
        with m.If(padding != 0):
            m.d.comb += self.bytes.ready.eq(0)
        return m


def _mutant_proof(base, name, make, **changes):
    return dataclasses.replace(base, name=name, harness=_harness(make), **changes)


_BY_NAME = {proof.name: proof for proof in PROOFS}
MUTANT_BMC_DEPTH = 24     # cycles from power-up: two short requests

MUTANTS = (
    Mutant("padded_frame",
           "a frame cut short is padded, holding the line (bytes lost after a padded frame: found by the "
           "independent host, fixed in the lean-top issue)",
           _mutant_proof(_BY_NAME["receiver"], "receiver_padded_frame", lambda: _receiver(PaddingReceiver),
                         mode="bmc", depth=MUTANT_BMC_DEPTH),
           'Assert(self.bytes.ready | now["CHECK"]'),
    Mutant("silent_timeout",
           "a request that times out goes back to hunting without an answer",
           _mutant_proof(_BY_NAME["receiver"], "receiver_silent_timeout", lambda: _receiver(patched(
               hw.receiver, """                drop_partial_frame()
                m.next = "ANSWER"
""", """                drop_partial_frame()
                m.next = "HUNT"
""").RequestReceiver), mode="bmc", depth=MUTANT_BMC_DEPTH),
           'Assert(now["HUNT"] == (index == 0))'),
    Mutant("stale_feeding",
           "a new request keeps the last INFER's feeding flag: an engine stop answers a later RESET ABORTED",
           _mutant_proof(_BY_NAME["receiver"], "receiver_stale_feeding", lambda: _receiver(patched(
               hw.receiver, "far.eq(0), feeding.eq(0), full.eq(0)", "far.eq(0), full.eq(0)").RequestReceiver),
                         mode="bmc", depth=MUTANT_BMC_DEPTH),
           "Assert(~feeding"),
    Mutant("copy_of_later_events",
           "a STATUS copy adds the events waiting when the sweep reaches a counter, not those of the request's "
           "cycle: its payload mixes two moments (found by the independent host, fixed in the lean-top issue)",
           dataclasses.replace(_BY_NAME["counters"], name="counters_later_events", harness=lambda domain: _bank_harness(
               domain, patched(hw.counters, "Mux(fetched_sweep == _Sweep.COPY, at_copy,",
                               "Mux(fetched_sweep == _Sweep.COPY, pending,").CounterBank)),
           "Assert(bank.copy.data == snap.word_select"),
    Mutant("no_watchdog",
           "no expiry: an engine that never finishes (a LOAD of zero rows) holds the link for ever (the lock-up "
           "found by the independent host, fixed in the lean-top issue)",
           _mutant_proof(_BY_NAME["watchdog"], "watchdog_never_expires", lambda: _watchdog(patched(
               hw.watchdog, "m.d.sync += [count.eq(0), self.expired.eq(1)]", "m.d.sync += count.eq(0)"
           ).EngineWatchdog)),
           "Assert(~starving | (waiting <= count))"),
    Mutant("uart_bit_count",
           "the bit counter of the UART receiver before this proof (0..8 in four bits): from a count of 9 to 15 "
           "it needs up to 16 bit times to come back",
           _mutant_proof(_BY_NAME["uart_rx"], "uart_rx_bit_count", lambda: patched(
               hw.uart, "bit = Signal(3)", "bit = Signal(range(9))").UartRx(ICEBREAKER_DIVISOR)),
           "Assert(high + to_idle <= frame)"),
)
