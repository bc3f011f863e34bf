"""The serial link: the protocol of :mod:`layout.protocol` between a UART and a loadable engine.

:class:`LinkCore` is everything a board runs behind its two serial pins: UART, request receiver
(:mod:`hw.receiver`), pixel delivery (:mod:`hw.pixels`), engine, result queue and response sender
(:mod:`hw.sender`), status counters (:mod:`hw.counters`). Requests are handled in order and every
one gets one response. The receiver feeds an INFER's frames to the engine as their bytes arrive
(the CRC is checked at the end: a request that fails it still has its whole frames computed, and
their results are dropped), so the engine works while the line is busy; LOAD writes the engine's
memories byte by byte.
"""

from amaranth.hdl import Module, ResetInserter, Signal
from amaranth.lib import wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import In, Out

from layout.images import link_memories, model_id
from layout.params import CompileError
from layout.protocol import (COUNTERS, FRAMES_IN_FLIGHT, MAX_CLASSES, MAX_INFER_FRAMES, MAX_PENDING_REQUESTS,
                             MODEL_ID_BYTES, PROTOCOL_VERSION, Command, Identity, IDENTITY_MAGIC, LoadTarget, Status,
                             frame_bytes, watchdog_cycles)

from .counters import CounterBank
from .engine import Engine
from .framing import token_layout
from .pixels import BitExpander, ByteBuffer, PixelPacker
from .receiver import RequestReceiver, event_names
from .sender import ResponseSender, ResultQueue
from .uart import UartRx, UartTx, uart_divisor
from .watchdog import EngineWatchdog

GATEWARE_VERSION = 4


def default_timeout_cycles(clock_hz):
    """The receive timeout of a :class:`LinkCore` at ``clock_hz`` unless told otherwise: 10 ms."""
    return clock_hz // 100


def board_identity(compiled, *, clock_hz, baud, timeout_cycles, weights_in_spram, model_loaded):
    """The :class:`layout.protocol.Identity` of a :class:`LinkCore` built for ``compiled``."""
    params = compiled.params
    memories = link_memories(params)
    fields = {name: getattr(params, name) for name in (
        "pe", "simd", "input_bits", "pixels_per_beat", "tree_stages", "acc_width", "start_width", "score_width",
        "input_words", "act_words", "max_layers", "score_count", "gather_rows")}
    fields["conv"] = int(params.conv)
    return Identity(magic=IDENTITY_MAGIC, protocol=PROTOCOL_VERSION, gateware=GATEWARE_VERSION,
                    clock_hz=clock_hz, baud=baud, timeout_cycles=timeout_cycles,
                    weights_in_spram=int(weights_in_spram), **fields,
                    memories=tuple(memories[t] for t in LoadTarget), model_loaded=model_loaded,
                    model_id=model_id(compiled) if model_loaded else bytes(MODEL_ID_BYTES))


class LinkCore(wiring.Component):
    """A board's logic behind its serial pins: UART, protocol, loadable engine.

    Parameters
    ----------
    compiled : layout.compiler.CompiledModel
        Sizes the engine; its network is the memories' initial contents (the model the
        bitstream holds).
    clock_hz, baud : int
        The ``sync`` clock and the serial line's rate (8N1).
    timeout_cycles : int or None
        A frame whose next byte is this late is answered TIMEOUT; default 10 ms.
    logic_memory_bits, weights_in_spram :
        Passed to :class:`hw.engine.Engine`. With the weights in SPRAM, the board holds no
        model at power-up.

    Members
    -------
    rx : In(1)
        The serial line from the host (asynchronous; synchronised here), 1 when idle.
    tx : Out(1)
        The serial line to the host, 1 when idle.
    """

    def __init__(self, compiled, *, clock_hz, baud, timeout_cycles=None, logic_memory_bits=512,
                 weights_in_spram=False):
        params = compiled.params
        if params.score_count > MAX_CLASSES:
            raise CompileError(f"the link answers each frame with one class byte, so an engine on it holds at "
                               f"most {MAX_CLASSES} scores, not {params.score_count}")
        if params.input_bits == 1 and params.pixels_per_beat != 8:
            raise ValueError(f"a 1-bit model on the link needs 8 pixels per beat (S a multiple of 8), "
                             f"not {params.pixels_per_beat}")
        self._compiled = compiled
        self._clock_hz = clock_hz
        self._divisor, _ = uart_divisor(clock_hz, baud)
        self._timeout = default_timeout_cycles(clock_hz) if timeout_cycles is None else timeout_cycles
        self._watchdog = watchdog_cycles(
            weight_depth=params.weight_depth, max_layers=params.max_layers, input_words=params.input_words,
            act_words=params.act_words, simd=params.simd, tree_stages=params.tree_stages, conv=params.conv)
        self._logic_memory_bits = logic_memory_bits
        self._weights_in_spram = weights_in_spram
        self._identity = board_identity(compiled, clock_hz=clock_hz, baud=baud, timeout_cycles=self._timeout,
                                        weights_in_spram=weights_in_spram, model_loaded=not weights_in_spram)
        super().__init__({"rx": In(1, init=1), "tx": Out(1, init=1)})

    @property
    def identity(self):
        """The :class:`layout.protocol.Identity` this core answers IDENTIFY with, at power-up."""
        return self._identity

    @property
    def divisor(self):
        """Clock cycles per bit on the serial line."""
        return self._divisor

    def elaborate(self, platform):
        m = Module()
        compiled, params, identity = self._compiled, self._compiled.params, self._identity
        m.submodules.uart_rx = uart_rx = UartRx(self._divisor)
        m.submodules.uart_tx = uart_tx = UartTx(self._divisor)
        m.submodules.rx_sync = FFSynchronizer(self.rx, uart_rx.rx, init=1)
        m.d.comb += self.tx.eq(uart_tx.tx)

        m.submodules.engine = engine = Engine(compiled, logic_memory_bits=self._logic_memory_bits, loadable=True,
                                              weights_in_spram=self._weights_in_spram)
        max_frame = frame_bytes(params.input_bits, params.input_words * params.simd)
        m.submodules.receiver = receiver = RequestReceiver(
            link_memories(params), max_frame_bytes=max_frame, timeout_cycles=self._timeout,
            model_loaded=identity.model_loaded)
        # frames fed and not yet taken from the result queue: in the byte buffer and packer (one
        # each), the engine (two), the queue
        most_in_flight = MAX_INFER_FRAMES + FRAMES_IN_FLIGHT + 2
        m.submodules.sender = sender = ResponseSender(identity, max_results=most_in_flight + 1)
        wiring.connect(m, uart_rx.data, receiver.bytes)
        wiring.connect(m, sender.bytes, uart_tx.data)
        wiring.connect(m, receiver.load, engine.load, sender.load)
        m.d.comb += [receiver.frame_bytes.eq(engine.network.frame_bytes),
                     sender.model_loaded.eq(receiver.model_loaded)]

        # the engine is stopped (reset, with the frames in it) after a LOAD or RESET, or by its watchdog
        # (a register: it resets the whole engine)
        stop, expired = Signal(), Signal()
        m.d.sync += stop.eq(receiver.clear | expired)

        pixels = BitExpander() if params.input_bits == 1 else PixelPacker(params.pixels_per_beat)
        m.submodules.pixels = ResetInserter(stop)(pixels)
        m.submodules.frame_buffer = ResetInserter(stop)(frame_buffer := ByteBuffer())
        wiring.connect(m, receiver.frames, frame_buffer.i)
        wiring.connect(m, frame_buffer.o, pixels.bytes)
        wiring.connect(m, pixels.beats, engine.pixels)
        m.d.comb += [frame_buffer.discard.eq(receiver.discard), engine.discard.eq(receiver.discard),
                     engine.clear.eq(stop), receiver.abort.eq(stop), sender.abort.eq(stop)]
        if params.input_bits == 8:
            m.d.comb += pixels.discard.eq(receiver.discard)

        # small queues with combinational reads: flip-flops, not block RAMs (which the engine needs)
        m.submodules.tokens = tokens = SyncFIFO(width=token_layout.size, depth=MAX_PENDING_REQUESTS)
        # a stop keeps the results the sender owes to a response it has begun, and drops the rest
        # (a half-loaded network can make the engine produce results of no frame, which must not
        # be taken for the answers of the frames after the load)
        m.submodules.results = results = ResultQueue(MAX_INFER_FRAMES)
        wiring.connect(m, results.r, sender.results)
        wiring.connect(m, receiver.tokens, tokens.w_stream)
        wiring.connect(m, tokens.r_stream, sender.tokens)
        m.d.comb += [
            results.w.payload.eq(engine.results.payload.cls), results.w.valid.eq(engine.results.valid),
            engine.results.ready.eq(results.w.ready),
            results.truncate.eq(stop), results.keep.eq(sender.owed),
            sender.results_level.eq(results.level),
        ]

        # frames fed (counted from a register, a cycle late: the receiver's decision stays off the
        # counters' adders) and not yet taken from the queue
        fed = Signal()
        m.d.sync += fed.eq(receiver.frame_fed)
        in_flight = Signal(range(most_in_flight + 1))
        taken = results.r.valid & results.r.ready
        with m.If(stop):
            m.d.sync += in_flight.eq(sender.owed)
        with m.Else():
            m.d.sync += in_flight.eq(in_flight + fed - taken)
        # a stop loses the frames in flight, the one counted in its cycle included
        m.d.comb += [receiver.idle.eq((in_flight == 0) & ~fed), sender.in_flight.eq(in_flight + fed)]

        # the engine's watchdog (docs/protocol.md): whatever a LOAD wrote, a frame cannot hold the link
        m.submodules.watchdog = watchdog = EngineWatchdog(self._watchdog, most_in_flight)
        m.d.comb += [watchdog.fed.eq(fed), watchdog.produced.eq(engine.results.valid & engine.results.ready),
                     watchdog.blocked.eq(~results.w.ready), watchdog.stop.eq(stop), expired.eq(watchdog.expired)]

        # the status counters (layout.protocol.COUNTERS), in a block RAM with the STATUS snapshot
        m.submodules.counters = counters = CounterBank(COUNTERS)
        pulses = {"frames": engine.results.valid & engine.results.ready,
                  "framing_errors": uart_rx.framing_error, "overruns": uart_rx.overrun,
                  **{name: receiver.events[name] for name in event_names}}
        m.d.comb += [
            *[counters.events[name].eq(pulse) for name, pulse in pulses.items()],
            counters.clear.eq(receiver.reset_counters),
            counters.snapshot.eq(receiver.snapshot),
            sender.counters_ready.eq(counters.snapshot_ready),
        ]
        wiring.connect(m, counters.copy, sender.copy)

        # IDENTIFY and STATUS requests queued or being answered: LOAD answers BUSY meanwhile
        reads = Signal(range(MAX_PENDING_REQUESTS + 2))
        queued_read = receiver.tokens.valid & receiver.tokens.ready & (receiver.tokens.payload.status == Status.OK) & (
            (receiver.tokens.payload.command == Command.IDENTIFY) | (receiver.tokens.payload.command == Command.STATUS))
        read_sent = Signal()          # (registered: the sender's handshake stays off the counter)
        m.d.sync += [read_sent.eq(sender.read_sent), reads.eq(reads + queued_read - read_sent)]
        m.d.comb += [receiver.reads_pending.eq(reads != 0),
                     receiver.snapshot_free.eq(sender.snapshot_free & counters.snapshot_ready),
                     sender.snapshot.eq(receiver.snapshot)]
        return m
