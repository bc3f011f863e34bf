"""The request receiver: requests parsed from the line's bytes, INFER frames fed, LOADs performed."""

from amaranth.hdl import Assert, Assume, Cat, Cover, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from layout.protocol import LOAD_HEADER_BYTES, MAX_INFER_FRAMES, MAX_LOAD_DATA, SYNC, Command, LoadTarget, Status
from layout.rows import byte_lanes

from .framing import CRC16, frame_byte_layout, token_layout
from .loadable import load_signature

event_names = ("bad_crc", "bad_length", "unknown_command", "timeouts", "skipped_bytes")


class RequestReceiver(wiring.Component):
    """Parses requests from the received bytes, feeds INFER frames, performs LOADs, and hands
    each request's outcome to the response sender as one token.

    Parameters
    ----------
    memories : dict
        ``{LoadTarget: layout.protocol.Memory}`` (:func:`layout.images.link_memories`): LOAD's bounds.
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

        command, seq = Signal(8), Signal(8)
        status = Signal.like(self.tokens.payload.status)
        length_low = Signal(8)
        remaining = Signal(16)
        crc_low = Signal(8)
        m.submodules.crc = crc = CRC16.create()
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
            self.tokens.payload.command.eq(Mux(command > max(Command), 0, command)),
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
                        m.d.comb += crc.start.eq(1)
                        m.d.sync += [status.eq(Status.OK), frames.eq(0), in_frame.eq(0),
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
                    with m.If(Cat(crc_low, byte) != crc.crc):
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
        m.d.comb += [crc.data.eq(byte),
                     crc.valid.eq(take & ~fsm.ongoing("HUNT") & ~fsm.ongoing("CRC_LOW") & ~fsm.ongoing("CRC_HIGH"))]
        with m.If(~fsm.ongoing("HUNT") & ~fsm.ongoing("CHECK") & ~fsm.ongoing("ANSWER")
                  & self.bytes.ready & ~self.bytes.valid):
            m.d.sync += timer.eq(Mux(late, 0, timer + 1))
        if platform == "formal":
            self._properties(m, fsm, timer=timer, command=command, seq=seq, status=status, remaining=remaining,
                             crc=crc.crc, crc_low=crc_low, feeding=feeding, length_low=length_low)
        return m

    def _properties(self, m, fsm, *, timer, command, seq, status, remaining, crc, crc_low, feeding,
                    length_low):
        """The receiver's promises, from any state (proved by :mod:`sim.proofs`):

        - back to hunting for SYNC once the line has been quiet for the timeout (while tokens are
          taken and frame bytes accepted);
        - the line is held (``bytes.ready`` low) only in the one cycle of the header check, while a
          token waits, or while a frame byte waits for the engine: a request's end never takes a
          byte of the next;
        - one token per request, after it and before the next begins, with the request's code and
          sequence number;
        - a well-formed RESET is answered OK, resets the counters and stops the engine.
        """
        timeout = self._timeout
        states = ("HUNT", "CODE", "SEQ", "LENGTH_LOW", "LENGTH_HIGH", "CHECK", "PAYLOAD", "CRC_LOW", "CRC_HIGH",
                  "ANSWER")
        now = {state: fsm.ongoing(state) for state in states}
        byte, take = self.bytes.payload, self.bytes.valid & self.bytes.ready
        answered = self.tokens.valid & self.tokens.ready
        awaiting_byte = ~now["HUNT"] & ~now["CHECK"] & ~now["ANSWER"]
        m.d.comb += Assert(Cat(*now.values()).any())
        with m.If(~now["HUNT"] & ~now["ANSWER"]):
            m.d.comb += Assert(timer < timeout)

        # the environment: the STATUS snapshot place is freed only by the sender, never taken back
        # except by a snapshot
        was_free = Signal()
        m.d.sync += was_free.eq(self.snapshot_free & ~self.snapshot)
        with m.If(was_free):
            m.d.comb += Assume(self.snapshot_free)

        # quiet: cycles in a row with no byte offered, tokens taken, frame bytes accepted; the
        # cycles left to HUNT if that goes on: their sum is bounded (an inductive ranking)
        calm = ~self.bytes.valid & self.tokens.ready & self.snapshot_free & self.frames.ready & ~self.abort
        quiet = Signal(range(timeout + 3))
        m.d.sync += quiet.eq(Mux(calm, Mux(quiet == timeout + 2, quiet, quiet + 1), 0))
        to_hunt = Signal(range(timeout + 3))
        with m.If(now["ANSWER"]):
            m.d.comb += to_hunt.eq(1)
        with m.Elif(now["CHECK"]):
            m.d.comb += to_hunt.eq(timeout + 2 - timer)
        with m.Elif(awaiting_byte):
            m.d.comb += to_hunt.eq(timeout + 1 - timer)
        m.d.comb += Assert(quiet + to_hunt <= timeout + 2)
        with m.If(quiet == timeout + 2):
            m.d.comb += Assert(now["HUNT"])

        # the line is held only by the header check (one cycle), a waiting token or the engine
        m.d.comb += Assert(self.bytes.ready | now["CHECK"] | now["ANSWER"]
                           | (now["PAYLOAD"] & (~self.frames.ready | self.abort)))
        was_check = Signal()
        m.d.sync += was_check.eq(now["CHECK"])
        with m.If(was_check):
            m.d.comb += Assert(~now["CHECK"])

        # requests: a SYNC taken while hunting opens one, its token closes it; `index` counts its
        # bytes (up to 7: a whole RESET), the code, sequence number, length and CRC are kept as they pass
        begun = take & now["HUNT"] & (byte == SYNC)
        index = Signal(range(8))
        header = [Signal(8, name=f"header_{i}") for i in range(7)]     # (SYNC), code, seq, length, CRC
        with m.If(begun):
            m.d.sync += index.eq(1)
        with m.Elif(take & ~now["HUNT"] & (index != 7)):
            m.d.sync += index.eq(index + 1)
            with m.Switch(index):
                for i in range(1, 7):
                    with m.Case(i):
                        m.d.sync += header[i].eq(byte)
        code_seen, seq_seen = header[1], header[2]
        for i, state in enumerate(["CODE", "SEQ", "LENGTH_LOW", "LENGTH_HIGH"], start=1):
            with m.If(now[state]):
                m.d.comb += Assert(index == i)
        with m.If(now["CHECK"] | now["PAYLOAD"] | now["CRC_LOW"] | now["CRC_HIGH"]):
            m.d.comb += Assert(index >= 5)
        with m.If(~now["HUNT"]):
            m.d.comb += [Assert(command == Mux(index > 1, code_seen, 0)), Assert(seq == Mux(index > 2, seq_seen, 0))]
        with m.If(answered):
            m.d.comb += [
                Assert(self.tokens.payload.seq == Mux(index > 2, seq_seen, 0)),
                Assert(self.tokens.payload.command == Mux((index > 1) & (code_seen <= max(Command)), code_seen, 0)),
            ]
        # every request is answered once: a request is open from its SYNC to its token (the
        # receiver hunts exactly when none is), and only an open one is answered
        with m.If(answered):
            m.d.sync += index.eq(0)
        m.d.comb += [Assert(now["HUNT"] == (index == 0)), Assert(~answered | (index != 0))]

        # a RESET of length 0 whose CRC matches (the CRC is the generator's, checked against the
        # host's by simulation): answered OK whatever came before, counters reset, the engine
        # stopped in the next cycle
        length_seen = Cat(header[3], header[4])
        with m.If(now["CODE"] | now["SEQ"] | now["LENGTH_LOW"] | now["LENGTH_HIGH"] | now["CHECK"]):
            m.d.comb += [Assert(status == Status.OK), Assert(~feeding)]
        with m.If(~now["HUNT"]):
            m.d.comb += Assert(~feeding | (command == Command.INFER))
        with m.If(now["LENGTH_HIGH"]):
            m.d.comb += Assert(length_low == header[3])
        with m.If(now["CHECK"]):
            m.d.comb += Assert(remaining == length_seen)
        with m.If(now["PAYLOAD"]):
            m.d.comb += Assert(length_seen != 0)
        with m.If(length_seen == 0):
            m.d.comb += [Assert(~now["CRC_LOW"] | (index == 5)), Assert(~now["CRC_HIGH"] | (index == 6))]
        reset_request = (code_seen == Command.RESET) & (length_seen == 0)
        with m.If((now["CRC_LOW"] | now["CRC_HIGH"]) & reset_request):
            m.d.comb += Assert(status == Status.OK)
        crc_matched = Signal()
        with m.If(now["CRC_HIGH"] & take):
            m.d.sync += crc_matched.eq(Cat(crc_low, byte) == crc)
        well_formed_reset = reset_request & (index == 7) & crc_matched
        with m.If(now["ANSWER"] & well_formed_reset):
            m.d.comb += Assert(status == Status.OK)
        stopping = Signal()
        m.d.sync += stopping.eq(answered & well_formed_reset)
        with m.If(answered & well_formed_reset):
            m.d.comb += [Assert(self.tokens.payload.status == Status.OK), Assert(self.reset_counters)]
        with m.If(stopping):
            m.d.comb += Assert(self.clear)

        # every command and every answer is reachable
        for code in Command:
            m.d.comb += Cover(answered & (self.tokens.payload.command == code) & (status == Status.OK))
        for code in Status:
            m.d.comb += Cover(answered & (self.tokens.payload.status == code))
        for target in LoadTarget:
            m.d.comb += Cover(answered & (self.tokens.payload.command == Command.LOAD)
                              & (self.tokens.payload.status == Status.OK) & (self.load.target == target))
