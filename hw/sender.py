"""The response side of the link: the frames' results in a queue, and one response per request."""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import memory, stream, wiring
from amaranth.lib.memory import WritePort
from amaranth.lib.wiring import In, Out
from amaranth.utils import exact_log2

from layout.protocol import COUNTERS, MAX_INFER_FRAMES, MODEL_ID_BYTES, SYNC, Command, LoadTarget, Status

from .engine import registered_read
from .framing import CRC16, token_layout
from .loadable import load_signature


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
        # likewise the counts' next values: the handshakes only choose among them
        level_up, level_down = Signal.like(level), Signal.like(level)
        tail_next, head_next = Signal.like(tail), Signal.like(head)
        m.d.comb += [level_up.eq(level + 1), level_down.eq(level - 1), tail_next.eq(tail + 1), head_next.eq(head + 1)]
        with m.If(self.truncate):
            m.d.sync += [tail.eq(head + self.keep), level.eq(self.keep),
                         full.eq(self.keep == depth), empty.eq(self.keep == 0)]
        with m.Else():
            m.d.sync += [tail.eq(Mux(push, tail_next, tail)),
                         level.eq(Mux(push == pop, level, Mux(push, level_up, level_down))),
                         full.eq(Mux(pop, 0, full | (one_free & push))),
                         empty.eq(Mux(push, 0, empty | (one_left & pop)))]
        m.d.sync += head.eq(Mux(pop, head_next, head))
        return m


class ResponseSender(wiring.Component):
    """Sends one response per token: ``SYNC``, status, seq, length, payload, CRC.

    An INFER's frames are accounted for in order, each one either lost (the engine was stopped
    before its result: ``abort`` adds them to ``lost``) or a result in the queue. An OK INFER none
    of whose frames was lost is answered once all its results are in the queue (then they are
    owed: a stop keeps them), with its frames' classes; an INFER with a lost frame is answered
    ABORTED, and any other INFER outcome drops its frames' results first. IDENTIFY sends the
    identity (an :class:`layout.protocol.Identity` payload: its fixed bytes, the model-loaded byte
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
        The receiver's writes; those to MODEL_ID go to the identity (a cycle later).
    model_loaded : In(1)
    copy : In(WritePort.Signature(addr_width, shape=8).flip())
        The counter bank's copy (:class:`hw.counters.CounterBank`), byte ``b`` of the STATUS
        payload to address ``b``, written a cycle later; never in the same cycle as a load of MODEL_ID.
    counters_ready : In(1)
        The counter bank has no copy to make: the snapshot may be read from the next cycle on
        (the last byte's write then lands; the sender reads a cycle after it sees this).
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
        # the writes from registers, a cycle after they are offered: the choice and the address's
        # adder stay off the paths into the block RAM
        m.d.sync += [write.addr.eq(Mux(copy.en, snapshot_base + copy.addr, fixed + load.lane)),
                     write.data.eq(Mux(copy.en, copy.data, load.data)),
                     write.en.eq(copy.en | (load.en & (load.target == LoadTarget.MODEL_ID)))]
        read_addr, read_data = registered_read(m, payload, "payload")
        # sized to the longest payload: a register bit that is always 0 would become a constant
        # driving part of the register's wire, which the CXXRTL back end evaluates twice a cycle
        token = Signal(token_layout)
        code = Signal.like(token.status)     # the response's status
        length = Signal(range(max(identity_bytes, self._counter_bytes, MAX_INFER_FRAMES) + 1))
        index = Signal.like(length)
        left = Signal.like(token.frames)     # frames not yet accounted for
        lost = Signal.like(self.in_flight)   # frames stopped in the engine, not yet accounted for
        faulted = Signal()                   # one of the token's frames was lost
        holding = Signal()                   # a STATUS snapshot waits to be sent
        m.submodules.crc = crc = CRC16.create()
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
                m.d.comb += crc.start.eq(1)
                with m.If(out.ready):
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
                m.d.comb += [out.valid.eq(1), out.payload.eq(crc.crc[:8])]
                with m.If(out.ready):
                    m.next = "CRC_HIGH"
            with m.State("CRC_HIGH"):
                m.d.comb += [out.valid.eq(1), out.payload.eq(crc.crc[8:])]
                with m.If(out.ready):
                    with m.If((token.status == Status.OK) & (token.command == Command.STATUS)):
                        m.d.sync += holding.eq(0)
                    m.d.comb += self.read_sent.eq((token.status == Status.OK) & (
                        (token.command == Command.STATUS) | (token.command == Command.IDENTIFY)))
                    m.next = "IDLE"
        # the CRC covers the bytes from the status to the payload's last (SYNC resets it)
        m.d.comb += [crc.data.eq(out.payload),
                     crc.valid.eq(sent & ~fsm.ongoing("SYNC") & ~fsm.ongoing("CRC_LOW") & ~fsm.ongoing("CRC_HIGH"))]
        return m
