"""The serial link: the protocol of :mod:`host.protocol` between a UART and a loadable engine.

:class:`LinkCore` is everything a board runs behind its two serial pins: UART, request receiver,
engine, response sender. Requests are handled in order and every one gets one response. The
receiver feeds an INFER's frames to the engine as their bytes arrive (the CRC is checked at the
end: a request that fails it still has its frames computed, and their results are dropped), so
the engine works while the line is busy; LOAD writes the engine's memories byte by byte.
"""

import hashlib

from amaranth.hdl import Cat, Module, Mux, ResetInserter, Signal
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.memory import WritePort
from amaranth.lib.wiring import In, Out
from amaranth.utils import exact_log2

from host.protocol import (COUNTERS, FRAMES_IN_FLIGHT, LOAD_HEADER_BYTES, MAX_CLASSES, MAX_INFER_FRAMES,
                           MAX_LOAD_DATA, MAX_PENDING_REQUESTS,
                           MODEL_ID_BYTES, PROTOCOL_VERSION, SYNC, Command, Identity, IDENTITY_MAGIC,
                           LoadTarget, Memory, Status, frame_bytes, watchdog_cycles, word_bytes)

from .counters import CounterBank
from .engine import Engine, loadable_widths, network_row, registered_read
from .loadable import byte_lanes, load_signature
from .loader import pixel_layout
from .params import CompileError
from .sequencer import descriptor_rows
from .uart import UartRx, UartTx, uart_divisor

GATEWARE_VERSION = 4
MODEL_ID_BITS = 8 * MODEL_ID_BYTES


def _crc_rounds(value):
    """Eight shift-and-reduce rounds of the CRC on a 16-bit integer (a linear map over GF(2))."""
    for _ in range(8):
        value = ((value << 1) ^ 0x1021 if value & 0x8000 else value << 1) & 0xFFFF
    return value


def crc16_update(crc, byte):
    """CRC-16/CCITT-FALSE (:func:`host.protocol.crc16`) after one more byte, as logic: each bit
    an XOR of the bits of ``crc ^ (byte << 8)`` that the eight rounds move into it."""
    value = (crc ^ (byte << 8))[:16]
    columns = [_crc_rounds(1 << i) for i in range(16)]
    return Cat(*[_xor([value[i] for i in range(16) if columns[i] >> j & 1]) for j in range(16)])


def _xor(bits):
    result = bits[0]
    for bit in bits[1:]:
        result = result ^ bit
    return result


def link_memories(params):
    """``{LoadTarget: host.protocol.Memory}``: the load targets of an engine of ``params``."""
    depths = {LoadTarget.WEIGHTS: params.weight_depth, LoadTarget.STARTS: params.start_depth,
              LoadTarget.DESCRIPTORS: params.max_layers, LoadTarget.NETWORK: 1}
    memories = {t: Memory(depths[t], width) for t, width in loadable_widths(params).items()}
    memories[LoadTarget.MODEL_ID] = Memory(1, MODEL_ID_BITS)
    return memories


def memory_images(compiled):
    """``{LoadTarget: [word, ...]}``: what a LOAD of ``compiled`` writes to each target, from
    address 0 (the MODEL_ID word is :func:`model_id`, as a little-endian integer)."""
    params, image = compiled.params, compiled.image
    images = {LoadTarget.WEIGHTS: list(image.weight_words), LoadTarget.STARTS: list(image.start_words),
              LoadTarget.DESCRIPTORS: descriptor_rows(params, image.descriptors),
              LoadTarget.NETWORK: [network_row(params, image)]}
    digest = hashlib.sha256()
    for target, words in images.items():
        size = word_bytes(link_memories(params)[target].width)
        digest.update(bytes([target]) + len(words).to_bytes(4, "little"))
        digest.update(b"".join(w.to_bytes(size, "little") for w in words))
    images[LoadTarget.MODEL_ID] = [int.from_bytes(digest.digest()[:MODEL_ID_BYTES], "little")]
    return images


def model_id(compiled):
    """The id of ``compiled`` on a board: a digest of everything a LOAD writes."""
    return memory_images(compiled)[LoadTarget.MODEL_ID][0].to_bytes(MODEL_ID_BYTES, "little")


def board_identity(compiled, *, clock_hz, baud, timeout_cycles, weights_in_spram, model_loaded):
    """The :class:`host.protocol.Identity` of a :class:`LinkCore` built for ``compiled``."""
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


token_layout = data.StructLayout({
    "command": 8, "status": 8, "seq": 8,
    "frames": range(MAX_INFER_FRAMES + 1),    # frames fed to the engine: results to take
})
frame_byte_layout = data.StructLayout({"data": 8, "last": 1})   # last: a frame's last byte
event_names = ("bad_crc", "bad_length", "unknown_command", "timeouts", "skipped_bytes")


class RequestReceiver(wiring.Component):
    """Parses requests from the received bytes, feeds INFER frames, performs LOADs, and hands
    each request's outcome to the response sender as one token.

    Parameters
    ----------
    memories : dict
        ``{LoadTarget: host.protocol.Memory}`` (:func:`link_memories`): LOAD's bounds.
    max_frame_bytes : int
        The largest frame the engine was built for (bounds an INFER's length).
    timeout_cycles : int
        A frame whose next byte is later than this is answered TIMEOUT.
    model_loaded :
        Initial value (whether the bitstream holds a whole model).

    Members
    -------
    bytes : In(stream.Signature(8))
    frames : Out(stream.Signature(frame_byte_layout))
        INFER payload bytes, frame by frame.
    discard : Out(1)
        Pulses (registered) when an INFER ends inside a frame (timeout, wrong length, bad CRC): the
        bytes of that frame already sent on ``frames`` are to be dropped wherever they are, and no
        byte of it follows. No byte of a whole frame is ever dropped.
    frame_fed : Out(1)
        Pulses when a frame's last byte is taken by ``frames``.
    load : Out(hw.loadable.load_signature())
        Memory writes (the engine's, and MODEL_ID's in the response sender's identity), checked
        against ``memories``; registered: a write comes the cycle after its byte.
    tokens : Out(stream.Signature(token_layout))
    frame_bytes : In
        Bytes of a frame of the loaded model.
    idle : In(1)
        No frame is in the engine or waits for its answer: LOAD may go ahead.
    reads_pending : In(1)
        An IDENTIFY or STATUS is unanswered: LOAD answers BUSY (its answer is the state when it
        was accepted).
    snapshot_free : In(1)
        An OK STATUS may be queued (no STATUS copy waits to be sent or is being made).
    snapshot : Out(1)
        Pulses when an OK STATUS is queued: the counter bank copies the counters
        (:class:`hw.counters.CounterBank`).
    model_loaded : Out(1)
    clear : Out(1)
        Pulses after a LOAD or an OK RESET (a registered pulse, the cycle after the answer is
        queued): stops and resets the engine (with the frames in it: their INFERs are answered
        ABORTED).
    abort : In(1)
        The engine is being stopped (``clear``, or its watchdog): an INFER feeding it feeds no
        more and is answered ABORTED; no frame byte is sent in this cycle.
    reset_counters : Out(1)
    events : Out(StructLayout of event_names)
        One-cycle pulses for the status counters.
    """

    def __init__(self, memories, *, max_frame_bytes, timeout_cycles, model_loaded):
        if timeout_cycles < 1:
            raise ValueError(f"timeout_cycles must be at least 1, not {timeout_cycles!r}")
        self._memories = memories
        self._max_frame_bytes = max_frame_bytes
        self._timeout = timeout_cycles
        super().__init__({
            "bytes": In(stream.Signature(8)),
            "frames": Out(stream.Signature(frame_byte_layout)),
            "discard": Out(1),
            "frame_fed": Out(1),
            "load": Out(load_signature()),
            "tokens": Out(stream.Signature(token_layout)),
            "frame_bytes": In(range(max_frame_bytes + 1)),
            "idle": In(1),
            "reads_pending": In(1),
            "snapshot_free": In(1),
            "snapshot": Out(1),
            "model_loaded": Out(1, init=int(model_loaded)),
            "clear": Out(1),
            "abort": In(1),
            "reset_counters": Out(1),
            "events": Out(data.StructLayout({name: 1 for name in event_names})),
        })

    def elaborate(self, platform):
        m = Module()
        byte = self.bytes.payload
        take = self.bytes.valid & self.bytes.ready

        command, seq, status = Signal(8), Signal(8), Signal(8)
        length_low = Signal(8)
        remaining = Signal(16)
        crc, crc_low = Signal(16), Signal(8)
        frames = Signal(range(MAX_INFER_FRAMES + 1))
        in_frame = Signal(range(self._max_frame_bytes + 1))
        feeding = Signal()                  # this INFER's bytes go to the engine
        full = Signal()                     # it has fed MAX_INFER_FRAMES frames
        writing = Signal()                  # this LOAD writes (the engine was idle at its header)
        header = Signal(range(LOAD_HEADER_BYTES + 1))   # LOAD header bytes seen
        target = Signal(8)
        # the address and lane only as wide as the built memories need (a LOAD's 16-bit address
        # beyond them sets `far`, which refuses it)
        address_bits = max(memory.depth for memory in self._memories.values()).bit_length()
        addr = Signal(address_bits)
        far = Signal()
        lane = Signal(range(max(byte_lanes(memory.width) for memory in self._memories.values())))
        timer = Signal(range(self._timeout + 1))

        length = Cat(length_low, byte)
        most_infer = MAX_INFER_FRAMES * self._max_frame_bytes
        most_load = LOAD_HEADER_BYTES + MAX_LOAD_DATA
        # the longest payload of the frame's command, chosen when the code arrives (a register of
        # which constant 0 bits would cost the CXXRTL back end a second evaluation per cycle)
        limits = [0, most_infer, most_load, max(most_infer, most_load)]
        limit_kind = Signal(range(len(limits)))
        limit = Signal(range(max(limits) + 1))
        with m.Switch(limit_kind):
            for kind, value in enumerate(limits):
                with m.Case(kind):
                    m.d.comb += limit.eq(value)
        # a LOAD's target: is it one, is the address inside it, and its word's last lane
        known_target = target < len(LoadTarget)
        # (registered: target, addr and lane change only when a byte is taken, and the next byte
        # comes 5 bit times later at the earliest, so the decision stays off the byte's path)
        depth_ok, last_lane = Signal(), Signal()
        with m.Switch(target):
            for t, memory in self._memories.items():
                with m.Case(t):
                    m.d.sync += [depth_ok.eq(~far & (addr < memory.depth)),
                                 last_lane.eq(lane == byte_lanes(memory.width) - 1)]
        # a frame's last byte index, registered: it only changes with a LOAD
        last_index = Signal.like(in_frame)
        m.d.sync += last_index.eq(self.frame_bytes - 1)
        frame_last = in_frame == last_index
        m.d.comb += [
            self.frames.payload.data.eq(byte),
            self.frames.payload.last.eq(frame_last),
            self.tokens.payload.command.eq(command),
            self.tokens.payload.status.eq(status),
            self.tokens.payload.seq.eq(seq),
            self.tokens.payload.frames.eq(frames),
        ]

        # the write and the engine's reset are registered: the decisions behind them stay off the
        # paths into the engine (the reset reaches every register in it)
        # (registers as wide as addr and lane: the port's bits above them are constant 0, in logic)
        write_addr, write_lane = Signal.like(addr), Signal.like(lane)
        m.d.sync += [self.load.target.eq(target), write_addr.eq(addr), write_lane.eq(lane),
                     self.load.data.eq(byte), self.load.en.eq(0), self.clear.eq(0), self.discard.eq(0)]
        m.d.comb += [self.load.addr.eq(write_addr), self.load.lane.eq(write_lane)]

        def fail(code):
            """Record ``code`` unless an earlier error was recorded."""
            with m.If(status == Status.OK):
                m.d.sync += status.eq(code)

        with m.If(take):
            m.d.sync += timer.eq(0)
        with m.If(self.abort & feeding):
            # the frames fed are lost with the engine's state; the rest of the payload is read, not fed
            m.d.sync += [feeding.eq(0), in_frame.eq(0)]
            fail(Status.ABORTED)
        with m.If(self.frames.valid & self.frames.ready):
            m.d.sync += in_frame.eq(Mux(frame_last, 0, in_frame + 1))
            with m.If(frame_last):
                m.d.sync += [frames.eq(frames + 1), full.eq(frames == MAX_INFER_FRAMES - 1)]
                m.d.comb += self.frame_fed.eq(1)

        # inside a frame, a byte later than the timeout ends it
        late = Signal()
        m.d.comb += late.eq(self.bytes.ready & ~self.bytes.valid & (timer == self._timeout - 1))

        def drop_partial_frame():
            """End the request's frame feeding: a frame cut short is discarded, at once, so that
            the byte after this request is taken in time (a frame padded with zeros would hold the
            line for a frame's time and take one of the engine's two frame places)."""
            m.d.sync += [self.discard.eq(feeding & (in_frame != 0)), in_frame.eq(0)]

        def expire():
            with m.If(late):
                m.d.sync += status.eq(Status.TIMEOUT)
                drop_partial_frame()
                m.next = "ANSWER"

        with m.FSM() as fsm:
            with m.State("HUNT"):
                m.d.comb += self.bytes.ready.eq(1)
                with m.If(take):
                    with m.If(byte == SYNC):
                        # code 0 is no command: a frame cut off before its code is no LOAD or RESET
                        m.d.sync += [crc.eq(0xFFFF), status.eq(Status.OK), frames.eq(0), in_frame.eq(0),
                                     header.eq(0), lane.eq(0), far.eq(0), feeding.eq(0), full.eq(0), writing.eq(0),
                                     command.eq(0), seq.eq(0)]
                        m.next = "CODE"
                    with m.Else():
                        m.d.comb += self.events.skipped_bytes.eq(1)
            # the states that only keep what the byte says
            for state, register, value, following in [
                    ("CODE", command, byte, "SEQ"), ("LENGTH_LOW", length_low, byte, "LENGTH_HIGH"),
                    ("LENGTH_HIGH", remaining, length, "CHECK"), ("CRC_LOW", crc_low, byte, "CRC_HIGH")]:
                with m.State(state):
                    m.d.comb += self.bytes.ready.eq(1)
                    expire()
                    with m.If(take):
                        m.d.sync += register.eq(value)
                        m.next = following
            with m.State("SEQ"):
                m.d.comb += self.bytes.ready.eq(1)
                expire()
                with m.If(take):
                    m.d.sync += seq.eq(byte)
                    with m.Switch(command):
                        with m.Case(Command.IDENTIFY, Command.STATUS, Command.RESET):
                            m.d.sync += limit_kind.eq(0)
                        with m.Case(Command.INFER):
                            m.d.sync += limit_kind.eq(1)
                        with m.Case(Command.LOAD):
                            m.d.sync += limit_kind.eq(2)
                        with m.Default():
                            m.d.sync += limit_kind.eq(3)
                    m.next = "LENGTH_LOW"
            with m.State("CHECK"):
                # the header's checks, on registers (no byte is taken in this cycle)
                with m.If(remaining > limit):
                    # answered at once: a false SYNC in noise must not swallow what follows
                    m.d.sync += status.eq(Status.BAD_LENGTH)
                    m.next = "ANSWER"
                with m.Else():
                    m.next = "PAYLOAD"
                    with m.If(remaining == 0):
                        m.next = "CRC_LOW"
                    with m.Switch(command):
                        with m.Case(Command.IDENTIFY, Command.STATUS, Command.RESET):
                            pass
                        with m.Case(Command.INFER):
                            with m.If(remaining == 0):
                                m.d.sync += status.eq(Status.BAD_LENGTH)
                            with m.Elif(~self.model_loaded):
                                m.d.sync += status.eq(Status.NO_MODEL)
                            with m.Else():
                                m.d.sync += feeding.eq(1)
                        with m.Case(Command.LOAD):
                            with m.If(remaining <= LOAD_HEADER_BYTES):    # no data: nothing to load
                                m.d.sync += status.eq(Status.BAD_LENGTH)
                            with m.Elif(~self.idle | self.reads_pending):
                                m.d.sync += status.eq(Status.BUSY)
                            with m.Else():
                                # whatever the load turns out to be, the model is no longer whole
                                m.d.sync += [self.model_loaded.eq(0), writing.eq(1)]
                        with m.Default():
                            m.d.sync += status.eq(Status.UNKNOWN_COMMAND)
            with m.State("PAYLOAD"):
                # an INFER of more frames than the board answers at once: the rest is not fed
                m.d.comb += [self.bytes.ready.eq(~feeding | full | (self.frames.ready & ~self.abort)),
                             self.frames.valid.eq(feeding & ~full & self.bytes.valid & ~self.abort)]
                with m.If(take & feeding & full):
                    m.d.sync += [feeding.eq(0), status.eq(Status.BAD_LENGTH)]
                expire()
                with m.If(take):
                    m.d.sync += remaining.eq(remaining - 1)
                    with m.If(remaining == 1):
                        m.next = "CRC_LOW"
                    with m.If(command == Command.LOAD):
                        with m.If(header == 0):
                            m.d.sync += target.eq(byte)
                        with m.If(header == 1):
                            m.d.sync += addr[:8].eq(byte)
                            if address_bits < 8:
                                m.d.sync += far.eq(byte[address_bits:].any())
                        with m.If(header == 2):
                            if address_bits > 8:
                                m.d.sync += addr[8:].eq(byte)
                            with m.If(byte[max(address_bits - 8, 0):].any()):
                                m.d.sync += far.eq(1)
                        with m.If(header != LOAD_HEADER_BYTES):
                            m.d.sync += header.eq(header + 1)
                        with m.Elif(status == Status.OK):
                            with m.If(~known_target | ~depth_ok):
                                m.d.sync += status.eq(Status.BAD_ADDRESS)
                            with m.Else():
                                m.d.sync += self.load.en.eq(1)
                                m.d.sync += [lane.eq(Mux(last_lane, 0, lane + 1)), addr.eq(addr + last_lane)]
            with m.State("CRC_HIGH"):
                m.d.comb += self.bytes.ready.eq(1)
                expire()
                with m.If(take):
                    with m.If(Cat(crc_low, byte) != crc):
                        m.d.sync += status.eq(Status.BAD_CRC)
                    with m.Elif((command == Command.INFER) & (in_frame != 0)):
                        fail(Status.BAD_LENGTH)
                    with m.Elif((command == Command.LOAD) & ((header != LOAD_HEADER_BYTES) | (lane != 0))):
                        fail(Status.BAD_LENGTH)
                    drop_partial_frame()
                    m.next = "ANSWER"
            with m.State("ANSWER"):
                # one STATUS snapshot waits at most: the next OK STATUS waits for it to be sent
                status_read = (command == Command.STATUS) & (status == Status.OK)
                m.d.comb += self.tokens.valid.eq(~status_read | self.snapshot_free)
                with m.If(self.tokens.valid & self.tokens.ready):
                    m.d.comb += self.snapshot.eq(status_read)
                    m.d.comb += [
                        self.events.bad_crc.eq(status == Status.BAD_CRC),
                        self.events.bad_length.eq(status == Status.BAD_LENGTH),
                        self.events.unknown_command.eq(status == Status.UNKNOWN_COMMAND),
                        self.events.timeouts.eq(status == Status.TIMEOUT),
                    ]
                    with m.If(command == Command.LOAD):
                        with m.If(writing):
                            m.d.sync += self.clear.eq(1)
                        with m.If((status == Status.OK) & (target == LoadTarget.MODEL_ID)):
                            m.d.sync += self.model_loaded.eq(1)
                    with m.If((command == Command.RESET) & (status == Status.OK)):
                        m.d.sync += self.clear.eq(1)
                        m.d.comb += self.reset_counters.eq(1)
                    m.next = "HUNT"
        # the CRC covers the bytes from the code to the payload's last (SYNC resets it in HUNT)
        with m.If(take & ~fsm.ongoing("HUNT") & ~fsm.ongoing("CRC_LOW") & ~fsm.ongoing("CRC_HIGH")):
            m.d.sync += crc.eq(crc16_update(crc, byte))
        with m.If(~fsm.ongoing("HUNT") & ~fsm.ongoing("CHECK") & ~fsm.ongoing("ANSWER")
                  & self.bytes.ready & ~self.bytes.valid):
            m.d.sync += timer.eq(Mux(late, 0, timer + 1))
        return m


class ResultQueue(wiring.Component):
    """The frames' classes between the engine and the response sender: a FIFO of ``depth`` bytes
    (flip-flops) that can drop everything but its oldest entries at once.

    Members
    -------
    w : In(stream.Signature(8))
    r : Out(stream.Signature(8))
    level : Out(range(depth + 1))
        Entries held.
    truncate : In(1)
        Keeps the ``keep`` oldest entries and drops the others (and the write of this cycle); the
        reader must not take an entry in this cycle.
    keep : In(range(depth + 1))
    """

    def __init__(self, depth):
        if depth < 1 or depth & (depth - 1):
            raise ValueError(f"the result queue's depth must be a power of two, not {depth!r}")
        self._depth = depth
        super().__init__({"w": In(stream.Signature(8)), "r": Out(stream.Signature(8)),
                          "level": Out(range(depth + 1)), "truncate": In(1), "keep": In(range(depth + 1))})

    def elaborate(self, platform):
        m = Module()
        depth = self._depth
        m.submodules.storage = storage = memory.Memory(shape=8, depth=depth, init=[], attrs={"ram_style": "logic"})
        write, read = storage.write_port(), storage.read_port(domain="comb")
        # the pointers wrap at the depth (a power of two); the level and the full and empty flags are
        # registers of their own, so that no subtraction sits between the pointers and the handshakes
        head, tail = Signal(exact_log2(depth)), Signal(exact_log2(depth))
        level = Signal(range(depth + 1))
        full, empty = Signal(), Signal(init=1)
        push = self.w.valid & self.w.ready & ~self.truncate
        pop = self.r.valid & self.r.ready
        m.d.comb += [
            self.level.eq(level),
            self.w.ready.eq(~full),
            self.r.valid.eq(~empty),
            read.addr.eq(head), self.r.payload.eq(read.data),
            write.addr.eq(tail), write.data.eq(self.w.payload), write.en.eq(push),
        ]
        # the flags' next values from comparisons of registers, the handshakes last
        one_left, one_free = Signal(), Signal()
        m.d.comb += [one_left.eq(level == 1), one_free.eq(level == depth - 1)]
        with m.If(self.truncate):
            m.d.sync += [tail.eq(head + self.keep), level.eq(self.keep),
                         full.eq(self.keep == depth), empty.eq(self.keep == 0)]
        with m.Else():
            m.d.sync += [tail.eq(tail + push), level.eq(level + push - pop),
                         full.eq(Mux(pop, 0, full | (one_free & push))),
                         empty.eq(Mux(push, 0, empty | (one_left & pop)))]
        m.d.sync += head.eq(head + pop)
        return m


class ResponseSender(wiring.Component):
    """Sends one response per token: ``SYNC``, status, seq, length, payload, CRC.

    An INFER's frames are accounted for in order, each one either lost (the engine was stopped
    before its result: ``abort`` adds them to ``lost``) or a result in the queue. An OK INFER none
    of whose frames was lost is answered once all its results are in the queue (then they are
    owed: a stop keeps them), with its frames' classes; an INFER with a lost frame is answered
    ABORTED, and any other INFER outcome drops its frames' results first. IDENTIFY sends the
    identity (an :class:`host.protocol.Identity` payload: its fixed bytes, the model-loaded byte
    and the model id, which LOADs of MODEL_ID write and which reads as zeros while no model is
    loaded; LOAD answers BUSY while an IDENTIFY is unanswered, so it holds still); STATUS sends the
    counter bank's copy, made when the request was accepted. The identity's fixed bytes (a ROM),
    the model id and the copy live in one block RAM (the payload memory). Each payload byte is
    looked up before it is offered.

    Members
    -------
    tokens : In(stream.Signature(token_layout))
    results : In(stream.Signature(8))
        Each frame's class, in order (a :class:`ResultQueue`).
    results_level : In
        The results in the queue.
    owed : Out
        Results of the response being sent, still in the queue.
    abort : In(1)
        The engine has been stopped (with the frames in it, the queue kept the ``owed`` results):
        ``in_flight - owed`` frames are lost. No result is taken in that cycle.
    in_flight : In
        Frames fed and not yet taken from the queue.
    bytes : Out(stream.Signature(8))
    load : In(hw.loadable.load_signature())
        The receiver's writes; those to MODEL_ID go to the identity.
    model_loaded : In(1)
    copy : In(WritePort.Signature(addr_width, shape=8).flip())
        The counter bank's copy (:class:`hw.counters.CounterBank`), byte ``b`` of the STATUS
        payload to address ``b``; never in the same cycle as a load of MODEL_ID.
    counters_ready : In(1)
        The counter bank has no copy to make: the snapshot may be read.
    snapshot : In(1)
        A STATUS request is accepted (the counter bank copies its counters).
    snapshot_free : Out(1)
        No STATUS snapshot waits to be sent (``snapshot`` may pulse).
    read_sent : Out(1)
        Pulses when an OK IDENTIFY or STATUS response has been sent.
    """

    def __init__(self, identity, *, max_results):
        self._identity = identity.encode()
        self._fixed_bytes = len(identity.fixed_bytes())
        self._counter_bytes = sum(n for _, n in COUNTERS)
        in_flight = range(max_results + 1)
        super().__init__({
            "tokens": In(stream.Signature(token_layout)),
            "results": In(stream.Signature(8)),
            "results_level": In(range(MAX_INFER_FRAMES + 1)),
            "owed": Out(range(MAX_INFER_FRAMES + 1)),
            "abort": In(1),
            "in_flight": In(in_flight),
            "bytes": Out(stream.Signature(8)),
            "load": In(load_signature()),
            "model_loaded": In(1),
            "copy": In(WritePort.Signature(addr_width=max(self._counter_bytes - 1, 1).bit_length(),
                                          shape=8).flip()),
            "counters_ready": In(1),
            "snapshot": In(1),
            "snapshot_free": Out(1),
            "read_sent": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        identity_bytes = len(self._identity)
        fixed = self._fixed_bytes                     # then the model-loaded byte, then the id
        # the payload memory: the identity's fixed bytes, the model id, the STATUS copy
        snapshot_base = fixed + MODEL_ID_BYTES
        m.submodules.payload = payload = memory.Memory(
            shape=8, depth=snapshot_base + self._counter_bytes,
            init=self._identity[:fixed] + self._identity[fixed + 1:],
            # reads come only while no copy or model id load writes (see snapshot_free, reads_pending)
            attrs={"ram_style": "block", "no_rw_check": 1})
        write = payload.write_port()
        load, copy = self.load, self.copy
        m.d.comb += [write.addr.eq(Mux(copy.en, snapshot_base + copy.addr, fixed + load.lane)),
                     write.data.eq(Mux(copy.en, copy.data, load.data)),
                     write.en.eq(copy.en | (load.en & (load.target == LoadTarget.MODEL_ID)))]
        read_addr, read_data = registered_read(m, payload, "payload")
        # sized to the longest payload: a register bit that is always 0 would become a constant
        # driving part of the register's wire, which the CXXRTL back end evaluates twice a cycle
        token = Signal(token_layout)
        code = Signal(8)                     # the response's status
        length = Signal(range(max(identity_bytes, self._counter_bytes, MAX_INFER_FRAMES) + 1))
        index = Signal.like(length)
        left = Signal.like(token.frames)     # frames not yet accounted for
        lost = Signal.like(self.in_flight)   # frames stopped in the engine, not yet accounted for
        faulted = Signal()                   # one of the token's frames was lost
        holding = Signal()                   # a STATUS snapshot waits to be sent
        crc = Signal(16)
        out = self.bytes
        sent = out.valid & out.ready
        status = token.command == Command.STATUS
        m.d.comb += [read_addr.eq(Mux(status, snapshot_base + index, Mux(index > fixed, index - 1, index))),
                     self.snapshot_free.eq(~holding)]
        # the byte read for the index of the cycle before
        looked_up = Mux(status, read_data, Mux(index == fixed, self.model_loaded,
                                               Mux((index < fixed) | self.model_loaded, read_data, 0)))
        infer = token.command == Command.INFER
        payload_byte = Signal(8)
        take_result = self.results.valid & self.results.ready
        # the token's kind as registers of their own: they decide the queue's handshake
        infer_ok = Signal()                  # an OK INFER none of whose frames was lost
        dropping = Signal()                  # an INFER whose results are to be dropped

        with m.If(self.snapshot):
            m.d.sync += holding.eq(1)
        take_lost = Signal()
        m.d.sync += lost.eq(lost + Mux(self.abort, self.in_flight - self.owed, 0) - take_lost)
        with m.If(take_result & infer_ok):
            m.d.sync += self.owed.eq(self.owed - 1)

        with m.FSM() as fsm:
            with m.State("IDLE"):
                m.d.comb += self.tokens.ready.eq(1)
                with m.If(self.tokens.valid):
                    t = self.tokens.payload
                    m.d.sync += [token.eq(t), code.eq(t.status), left.eq(t.frames), faulted.eq(0),
                                 index.eq(0), length.eq(0),
                                 infer_ok.eq((t.command == Command.INFER) & (t.status == Status.OK)),
                                 dropping.eq((t.command == Command.INFER) & (t.status != Status.OK))]
                    with m.If(t.status == Status.OK):
                        with m.Switch(t.command):
                            with m.Case(Command.IDENTIFY):
                                m.d.sync += length.eq(identity_bytes)
                            with m.Case(Command.STATUS):
                                m.d.sync += length.eq(self._counter_bytes)
                    m.next = "ACCOUNT"
            with m.State("ACCOUNT"):
                # each of an INFER's frames: lost, or a result (dropped unless the answer is OK)
                with m.If((lost != 0) & (left != 0)):
                    m.d.comb += take_lost.eq(1)
                    m.d.sync += [left.eq(left - 1), faulted.eq(1), infer_ok.eq(0), dropping.eq(1)]
                with m.Elif(dropping):
                    m.d.comb += self.results.ready.eq((left != 0) & ~self.abort)
                    with m.If(take_result):
                        m.d.sync += left.eq(left - 1)
                    with m.If(left == 0):
                        with m.If(faulted & (token.status == Status.OK)):
                            m.d.sync += code.eq(Status.ABORTED)
                        m.next = "SYNC"
                with m.Elif(~self.abort & (self.results_level >= left)):
                    # every result is in the queue: owed from now on, a stop keeps them
                    m.d.sync += [self.owed.eq(left), length.eq(Mux(infer, left, length))]
                    m.next = "SYNC"
            with m.State("SYNC"):
                m.d.comb += [out.valid.eq(1), out.payload.eq(SYNC)]
                with m.If(out.ready):
                    m.d.sync += crc.eq(0xFFFF)
                    m.next = "STATUS"
            for state, value, following in [("STATUS", code, "SEQ"), ("SEQ", token.seq, "LENGTH_LOW"),
                                             ("LENGTH_LOW", length[:8], "LENGTH_HIGH")]:
                with m.State(state):
                    m.d.comb += [out.valid.eq(1), out.payload.eq(value)]
                    with m.If(out.ready):
                        m.next = following
            with m.State("LENGTH_HIGH"):
                m.d.comb += [out.valid.eq(1), out.payload.eq(length >> 8)]
                with m.If(out.ready):
                    m.next = "FETCH"
                    with m.If(length == 0):
                        m.next = "CRC_LOW"
            with m.State("FETCH"):
                # the payload byte at `index` into a register: the lookups stay off the paths from
                # the UART's handshake to the CRC
                with m.Switch(token.command):
                    with m.Case(Command.INFER):
                        m.d.comb += self.results.ready.eq(~self.abort)
                        with m.If(take_result):
                            m.d.sync += payload_byte.eq(self.results.payload)
                            m.next = "PAYLOAD"
                    with m.Default():
                        # a STATUS's copy is whole once the bank has no copy to make
                        with m.If(~status | self.counters_ready):
                            m.next = "LOOKUP"
            with m.State("LOOKUP"):
                m.d.sync += payload_byte.eq(looked_up)
                m.next = "PAYLOAD"
            with m.State("PAYLOAD"):
                m.d.comb += [out.valid.eq(1), out.payload.eq(payload_byte)]
                with m.If(sent):
                    m.d.sync += index.eq(index + 1)
                    m.next = "FETCH"
                    with m.If(index == length - 1):
                        m.next = "CRC_LOW"
            with m.State("CRC_LOW"):
                m.d.comb += [out.valid.eq(1), out.payload.eq(crc[:8])]
                with m.If(out.ready):
                    m.next = "CRC_HIGH"
            with m.State("CRC_HIGH"):
                m.d.comb += [out.valid.eq(1), out.payload.eq(crc[8:])]
                with m.If(out.ready):
                    with m.If((token.status == Status.OK) & (token.command == Command.STATUS)):
                        m.d.sync += holding.eq(0)
                    m.d.comb += self.read_sent.eq((token.status == Status.OK) & (
                        (token.command == Command.STATUS) | (token.command == Command.IDENTIFY)))
                    m.next = "IDLE"
        # the CRC covers the bytes from the status to the payload's last (SYNC resets it)
        with m.If(sent & ~fsm.ongoing("SYNC") & ~fsm.ongoing("CRC_LOW") & ~fsm.ongoing("CRC_HIGH")):
            m.d.sync += crc.eq(crc16_update(crc, out.payload))
        return m


class ByteBuffer(wiring.Component):
    """A one-byte register between the receiver and the engine's input: ``i.ready`` is a register
    (the buffer is empty), so the engine's ready does not reach the receiver's decisions in the
    same cycle. One byte per two cycles at most, far above the serial line's rate.

    Members
    -------
    i : In(stream.Signature(frame_byte_layout))
    o : Out(stream.Signature(frame_byte_layout))
    discard : In(1)
        Drops the byte held (:attr:`RequestReceiver.discard`: it is the newest byte sent, which
        belongs to the frame cut short).
    """

    i: In(stream.Signature(frame_byte_layout))
    o: Out(stream.Signature(frame_byte_layout))
    discard: In(1)

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.i.ready.eq(~self.o.valid)
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [self.o.payload.eq(self.i.payload), self.o.valid.eq(1)]
        with m.If(self.discard):
            m.d.sync += self.o.valid.eq(0)
        return m


class PixelPacker(wiring.Component):
    """Groups a frame's pixel bytes into the engine's input beats of K pixels; a frame's last
    beat is sent with the bytes it has (the engine ignores lanes past the frame's end).

    Members
    -------
    bytes : In(stream.Signature(frame_byte_layout))
    beats : Out(stream.Signature(ArrayLayout(8, pixels_per_beat)))
    discard : In(1)
        Drops the bytes of a frame cut short (:attr:`RequestReceiver.discard`): those collected,
        and the beat offered unless it is a frame's last (then it is the previous, whole frame's).
    """

    def __init__(self, pixels_per_beat):
        self._per_beat = pixels_per_beat
        super().__init__({"bytes": In(stream.Signature(frame_byte_layout)),
                          "beats": Out(stream.Signature(pixel_layout(pixels_per_beat))),
                          "discard": In(1)})

    def elaborate(self, platform):
        m = Module()
        lane = Signal(range(max(self._per_beat, 2)))
        ends_frame = Signal()            # the beat offered is a frame's last
        m.d.comb += self.bytes.ready.eq(~self.beats.valid | self.beats.ready)
        with m.If(self.beats.valid & self.beats.ready):
            m.d.sync += self.beats.valid.eq(0)
        with m.If(self.bytes.valid & self.bytes.ready):
            for k in range(self._per_beat):
                with m.If(lane == k):
                    m.d.sync += self.beats.payload[k].eq(self.bytes.payload.data)
            with m.If((lane == self._per_beat - 1) | self.bytes.payload.last):
                m.d.sync += [self.beats.valid.eq(1), lane.eq(0), ends_frame.eq(self.bytes.payload.last)]
            with m.Else():
                m.d.sync += lane.eq(lane + 1)
        with m.If(self.discard):
            m.d.sync += lane.eq(0)
            with m.If(~ends_frame):
                m.d.sync += self.beats.valid.eq(0)
        return m


class BitExpander(wiring.Component):
    """A byte of 8 binarized pixels (pixel ``k`` in bit ``k``, :mod:`model.bits` order) to one
    input beat of 8 pixels, 255 for a 1 bit and 0 for a 0 bit: the engine's threshold (any value
    0..256 a model file allows) then gives back the same bit. Combinational.

    Members
    -------
    bytes : In(stream.Signature(frame_byte_layout))
    beats : Out(stream.Signature(ArrayLayout(8, 8)))
    """

    def __init__(self):
        super().__init__({"bytes": In(stream.Signature(frame_byte_layout)),
                          "beats": Out(stream.Signature(pixel_layout(8)))})

    def elaborate(self, platform):
        m = Module()
        m.d.comb += [self.beats.valid.eq(self.bytes.valid), self.bytes.ready.eq(self.beats.ready),
                     *[self.beats.payload[k].eq(self.bytes.payload.data[k].replicate(8)) for k in range(8)]]
        return m


class LinkCore(wiring.Component):
    """A board's logic behind its serial pins: UART, protocol, loadable engine.

    Parameters
    ----------
    compiled : hw.compiler.CompiledModel
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
        self._timeout = clock_hz // 100 if timeout_cycles is None else timeout_cycles
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
        """The :class:`host.protocol.Identity` this core answers IDENTIFY with, at power-up."""
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
        stop = Signal()
        watchdog = Signal(range(self._watchdog + 1))
        expired = Signal()
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
        m.d.comb += [
            tokens.w_data.eq(receiver.tokens.payload), tokens.w_en.eq(receiver.tokens.valid),
            receiver.tokens.ready.eq(tokens.w_rdy),
            sender.tokens.payload.eq(tokens.r_data), sender.tokens.valid.eq(tokens.r_rdy),
            tokens.r_en.eq(sender.tokens.ready),
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

        # the engine's watchdog: while it holds frames and may put out a result, the next must come
        # within watchdog_cycles (docs/protocol.md), whatever a LOAD wrote into its memories
        in_engine = Signal.like(in_flight)
        produced = engine.results.valid & engine.results.ready
        with m.If(stop):
            m.d.sync += in_engine.eq(0)
        with m.Elif(fed & ~produced):
            m.d.sync += in_engine.eq(in_engine + 1)
        with m.Elif(produced & ~fed & (in_engine != 0)):
            m.d.sync += in_engine.eq(in_engine - 1)
        m.d.sync += expired.eq(0)
        with m.If(stop | produced | (in_engine == 0) | ~results.w.ready):
            m.d.sync += watchdog.eq(0)
        with m.Elif(watchdog == self._watchdog - 1):
            m.d.sync += [watchdog.eq(0), expired.eq(1)]
        with m.Else():
            m.d.sync += watchdog.eq(watchdog + 1)

        # the status counters (host.protocol.COUNTERS), in a block RAM with the STATUS snapshot
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
