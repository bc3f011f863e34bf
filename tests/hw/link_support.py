"""Test support for the serial link's gateware: a :class:`hw.link.LinkCore` behind its serial line,
built once per model, and the bytes of a conversation with it.

:class:`BoardLine` drives a compiled :class:`sim.board.SerialLine` directly (no sockets): requests
go onto the line as :func:`layout.protocol.encode_frame` bytes, responses come back through a
:class:`layout.protocol.FrameDecoder`.
"""

from dataclasses import dataclass

import numpy as np
import pytest

from host.payloads import input_frame, load_requests
from hw.link import LinkCore
from hw.uart import uart_divisor
from layout.compiler import compile_model
from layout.images import memory_images
from layout.protocol import Command, FrameDecoder, LoadTarget, Status, encode_frame
from model.golden import infer
from sim.board import SimulatedBoard
from sim.cxxrtl import StreamSimulator

# A low clock and baud rate (4 cycles per bit) and a short timeout keep the cycle counts small. A built board
# has 5 at least (hw.plan.MIN_CYCLES_PER_BIT: a margin for the synchroniser), which simulation does not need.
CLOCK_HZ = 400_000
BAUD = 100_000
TIMEOUT_CYCLES = 2_000
FOLDING = {"pe": 2, "simd": 8, "tree_stages": 1}
_CHUNK_CYCLES = 2_000


@dataclass(frozen=True)
class LinkBoard:
    """A model's :class:`LinkCore` at :data:`CLOCK_HZ` and :data:`BAUD`, and its compiled serial line."""
    model: object
    simulated: SimulatedBoard
    library: object       # sim.cxxrtl_build.CxxrtlLibrary of the SerialLine

    @property
    def compiled(self):
        return self.simulated.compiled

    @property
    def core(self):
        return self.simulated.core

    @property
    def identity(self):
        return self.simulated.core.identity

    @property
    def byte_cycles(self):
        return 10 * self.simulated.divisor

    def simulator(self):
        return StreamSimulator(self.library)


def build_link_board(model, cache, *, capacity=None):
    """A :class:`LinkBoard` of ``model``, its CXXRTL build in the directory ``cache``; ``capacity``
    (as :func:`layout.compiler.compile_model` takes it) sizes an engine bigger than ``model`` needs."""
    compiled = compile_model(model, **FOLDING, capacity=capacity)
    core = LinkCore(compiled, clock_hz=CLOCK_HZ, baud=BAUD, timeout_cycles=TIMEOUT_CYCLES)
    divisor, baud_error = uart_divisor(CLOCK_HZ, BAUD)
    simulated = SimulatedBoard(board=None, compiled=compiled, weights_in_spram=False, clock_hz=CLOCK_HZ,
                               baud=BAUD, baud_error=baud_error, divisor=divisor, core=core)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("BNN_CACHE_DIR", str(cache))
        library = simulated.compile()
    return LinkBoard(model, simulated, library)


def request(command, seq, payload=b""):
    """The bytes of one request."""
    return encode_frame(command, seq, payload)


def infer_payload(model, images):
    """An INFER payload: the frames of ``images`` (:func:`host.payloads.input_frame`)."""
    return b"".join(input_frame(model, image) for image in images)


def infer_request(model, images, seq):
    return request(Command.INFER, seq, infer_payload(model, images))


def golden_classes(model, images):
    """The golden model's classes of ``images``, as the bytes of an OK INFER response."""
    return bytes(infer(model, np.asarray(images, dtype=np.uint8)).classes.astype(np.uint8))


def load_payloads(compiled, identity):
    """The LOAD payloads of ``compiled`` (host-side images: :func:`layout.images.memory_images`) for a board
    of ``identity``."""
    return load_requests(memory_images(compiled), identity.memories)


class BoardLine:
    """A conversation with a board: bytes onto its serial line, response frames back.

    :meth:`exchange` puts bytes onto the line back to back and simulates until the responses
    expected have come, then for ``quiet_cycles`` more, in which nothing more may come (every
    request gets exactly one response). Everything the board sends must decode as frames with no
    byte skipped and no bad CRC.
    """

    def __init__(self, simulator, board):
        self.simulator = simulator
        self.board = board
        self.decoder = FrameDecoder()
        self.received = bytearray()     # every byte the board sent
        # longer than the receive timeout, so that a request cut off is answered within it
        self.quiet_cycles = board.identity.timeout_cycles + 20 * board.byte_cycles

    def exchange(self, data, responses):
        """Send ``data`` and return the ``responses`` frames the board answers with."""
        pending = np.frombuffer(bytes(data), dtype=np.uint8)
        frames = []
        budget = (len(data) + 100 * responses) * self.board.byte_cycles + 2 * self.quiet_cycles
        deadline = self.simulator.cycle + budget
        quiet_from = None
        while True:
            now = self.simulator.cycle
            if len(pending) == 0 and len(frames) >= responses:
                quiet_from = now if quiet_from is None else quiet_from
                if now - quiet_from >= self.quiet_cycles:
                    break
            if now >= deadline:
                raise AssertionError(f"{len(frames)} of {responses} responses after {budget} cycles: {frames}")
            batch = self.simulator.run(pending, max_cycles=min(_CHUNK_CYCLES, deadline - now))
            pending = pending[batch.consumed:]
            out = batch.out_payloads.astype(np.uint8).tobytes()
            self.received += out
            frames += self.decoder.feed(out)
        assert (self.decoder.skipped, self.decoder.bad_frames) == (0, 0), "the board sent a malformed response"
        assert len(frames) == responses, f"{len(frames)} responses, not {responses}: {frames}"
        return frames

    def call(self, command, seq, payload=b""):
        """One request; its response's ``(status, payload)``, checking the seq."""
        response, = self.exchange(request(command, seq, payload), 1)
        assert response.seq == seq
        return Status(response.code), response.payload

    def load(self, compiled, first_seq=0):
        """LOAD ``compiled`` request by request (each must answer OK); returns the next seq."""
        seq = first_seq
        for payload in load_payloads(compiled, self.board.identity):
            assert self.call(Command.LOAD, seq % 256, payload) == (Status.OK, b""), LoadTarget(payload[0])
            seq += 1
        return seq
