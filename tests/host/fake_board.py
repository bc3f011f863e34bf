"""Test support: a board in Python that speaks :mod:`layout.protocol`, answers from the golden model,
and injects faults into its responses.

:class:`FakeBoard` has the parts of a pyserial port a :class:`host.link.Link` uses (``write``,
``read``, ``in_waiting``, ``timeout``, ``close``). It answers every request as it is written, but a
response becomes readable only ``latency`` seconds later (and never before an earlier one: the
line is in order), so that a host that waits for each answer before sending the next is slow.

A load writes the real memory images (:mod:`layout.images`); the board keeps them as words and
answers frames from the model whose id the load wrote.
"""

import dataclasses
import select
import socket
import threading
import time
from collections import deque
from contextlib import contextmanager

import numpy as np

from host.board import compile_for_board
from layout.compiler import compile_model
from layout.images import link_memories, memory_images, model_id
from layout.protocol import (COUNTERS, MAX_INFER_FRAMES, MODEL_ID_BYTES, PROTOCOL_VERSION, Command, FrameDecoder,
                             IDENTITY_MAGIC, Identity, LOAD_HEADER_BYTES, LoadTarget, Status, encode_frame,
                             frame_bytes, word_bytes)
from model.bits import unpack_bits
from model.golden import infer


def board_identity(model, *, pe=4, simd=32, baud=3_000_000, clock_hz=36_000_000, spare=2):
    """The identity of a board built for ``model`` on a P x S engine, with ``spare`` times the
    weight and start memory ``model`` needs (room for other models)."""
    params = compile_model(model, pe=pe, simd=simd).params
    params = dataclasses.replace(params, weight_depth=params.weight_depth * spare,
                                 start_depth=params.start_depth * spare, max_layers=params.max_layers + 2)
    memories = tuple(link_memories(params)[t] for t in LoadTarget)
    return Identity(
        magic=IDENTITY_MAGIC, protocol=PROTOCOL_VERSION, gateware=1, clock_hz=clock_hz, baud=baud,
        timeout_cycles=clock_hz // 1000, weights_in_spram=0, pe=pe, simd=simd, input_bits=params.input_bits,
        pixels_per_beat=params.pixels_per_beat, tree_stages=params.tree_stages, acc_width=params.acc_width,
        start_width=params.start_width, score_width=params.score_width, input_words=params.input_words,
        act_words=params.act_words, max_layers=memories[LoadTarget.DESCRIPTORS].depth,
        score_count=params.score_count, conv=int(params.conv), gather_rows=params.gather_rows, memories=memories,
        model_loaded=False,
        model_id=bytes(MODEL_ID_BYTES))


class Faults:
    """Which fault (if any) hits the response to each request: ``plan`` maps a request number
    (0, 1, ... in the order the board received them) to a fault, and ``rate`` draws one of ``kinds``
    at random for the others.

    Faults: ``drop`` (no response: the request was lost), ``truncate`` (the response's last bytes
    are lost), ``flip`` (one bit of the response flips), ``garbage`` (noise before the response),
    ``delay`` (the response comes ``delay`` seconds late), ``short`` (an OK response one byte
    short), ``retarget`` (a LOAD whose target byte was corrupted into WEIGHTS on the line: the real
    board writes its data there before it checks the CRC, then answers BAD_CRC), and a
    :class:`Status` name (``BUSY``, ``NO_MODEL``, ``BAD_CRC``, ...) instead of the answer.
    """

    def __init__(self, plan=None, *, rate=0.0, kinds=("drop", "truncate", "flip", "garbage", "BAD_CRC"),
                 delay=0.2, seed=0):
        self.plan = dict(plan or {})
        self.rate = rate
        self.kinds = kinds
        self.delay = delay
        self.rng = np.random.default_rng(seed)

    def pick(self, number):
        if number in self.plan:
            return self.plan[number]
        if self.rate and self.rng.random() < self.rate:
            return self.kinds[self.rng.integers(len(self.kinds))]
        return None


class FakeBoard:
    """A board with the engine ``identity`` describes that can run any of ``models`` once loaded
    (``loaded``: the one it holds at power-up)."""

    def __init__(self, identity, models=(), *, loaded=None, latency=0.0, faults=None, silent=False):
        self.identity = identity
        self.catalogue = {model_id(compile_for_board(m, identity)): m for m in models}
        self.latency = latency
        self.faults = faults or Faults()
        self.silent = silent
        self.timeout = None
        self.memories = {t: [0] * identity.memories[t].depth for t in LoadTarget}
        self.model_loaded = False
        self.loads = []                 # (target, address, words) of every LOAD carried out
        self.requests = []              # (command, seq, payload) of every request received
        self.frames_in_flight = 0       # frames received whose answer the host has not read
        self.max_in_flight = 0
        self.counters = dict.fromkeys((name for name, _ in COUNTERS), 0)
        self.closed = False
        self._decoder = FrameDecoder()
        self._out = deque()             # [ready_at, bytes, frames answered]
        self._rng = np.random.default_rng(1)
        if loaded is not None:
            compiled = compile_for_board(loaded, identity)
            for target, words in memory_images(compiled).items():
                self.memories[target][:len(words)] = words
            self.model_loaded = True

    @property
    def loaded_id(self):
        return self.memories[LoadTarget.MODEL_ID][0].to_bytes(MODEL_ID_BYTES, "little")

    # -- the pyserial side

    def write(self, data):
        for frame in self._decoder.feed(data):
            self._answer(frame)
        return len(data)

    @property
    def in_waiting(self):
        now = time.monotonic()
        return sum(len(chunk[1]) for chunk in self._out if chunk[0] <= now)

    def read(self, size=1):
        deadline = time.monotonic() + (self.timeout or 0)
        while not (self._out and self._out[0][0] <= time.monotonic()):
            now = time.monotonic()
            if now >= deadline:
                return b""
            ready = self._out[0][0] if self._out else deadline
            time.sleep(min(deadline, ready) - now)
        data = bytearray()
        now = time.monotonic()
        while self._out and self._out[0][0] <= now and len(data) < size:
            chunk = self._out[0]
            take = chunk[1][:size - len(data)]
            data += take
            chunk[1] = chunk[1][len(take):]
            if not chunk[1]:
                self._out.popleft()
                self.frames_in_flight -= chunk[2]
        return bytes(data)

    def close(self):
        self.closed = True

    # -- the board

    def _answer(self, frame):
        number = len(self.requests)
        self.requests.append((frame.code, frame.seq, frame.payload))
        if self.silent:
            return
        fault = self.faults.pick(number)
        if fault == "drop":
            return
        frames = 0
        if fault == "retarget" and frame.code == Command.LOAD:
            self._write_retargeted(frame.payload)
            status, payload = Status.BAD_CRC, b""
        elif fault in Status.__members__:
            status, payload = Status[fault], b""
        else:
            status, payload = self._carry_out(frame)
            if frame.code == Command.INFER and status == Status.OK:
                frames = len(payload)
                self.frames_in_flight += frames
                self.max_in_flight = max(self.max_in_flight, self.frames_in_flight)
        if fault == "short":
            payload = payload[:-1]
        response = bytearray(encode_frame(status, frame.seq, payload))
        if fault == "truncate":
            response = response[:self._rng.integers(1, len(response))]
        elif fault == "flip":
            response[self._rng.integers(len(response))] ^= 1 << self._rng.integers(8)
        elif fault == "garbage":
            response = bytearray(self._rng.integers(0, 256, 12, dtype=np.uint8).tobytes()) + response
        ready = time.monotonic() + self.latency + (self.faults.delay if fault == "delay" else 0)
        if self._out:
            ready = max(ready, self._out[-1][0])
        self._out.append([ready, bytes(response), frames])

    def _carry_out(self, frame):
        """The status and payload of the answer to a well-formed request."""
        if frame.code == Command.IDENTIFY:
            fixed = self.identity.fixed_bytes()
            return Status.OK, fixed + bytes([self.model_loaded]) + self.loaded_id
        if frame.code == Command.STATUS:
            self.counters["skipped_bytes"] = self._decoder.skipped
            return Status.OK, b"".join((self.counters[name] % (1 << 8 * n)).to_bytes(n, "little")
                                       for name, n in COUNTERS)
        if frame.code == Command.RESET:
            self.counters = dict.fromkeys(self.counters, 0)
            return Status.OK, b""
        if frame.code == Command.LOAD:
            return self._load(frame.payload), b""
        if frame.code == Command.INFER:
            return self._infer(frame.payload)
        return Status.UNKNOWN_COMMAND, b""

    def _load(self, payload):
        if len(payload) <= LOAD_HEADER_BYTES:
            return Status.BAD_LENGTH
        if payload[0] >= len(LoadTarget):
            return Status.BAD_ADDRESS
        target = LoadTarget(payload[0])
        address = int.from_bytes(payload[1:LOAD_HEADER_BYTES], "little")
        data = payload[LOAD_HEADER_BYTES:]
        size = word_bytes(self.identity.memories[target].width)
        if len(data) % size:
            return Status.BAD_LENGTH
        words = [int.from_bytes(data[k:k + size], "little") for k in range(0, len(data), size)]
        if address + len(words) > len(self.memories[target]):
            return Status.BAD_ADDRESS
        self.memories[target][address:address + len(words)] = words
        self.loads.append((target, address, words))
        self.model_loaded = target == LoadTarget.MODEL_ID
        return Status.OK

    def _write_retargeted(self, payload):
        """What the gateware does with a LOAD whose target byte turned into WEIGHTS on the line:
        its data goes into the weights from its address, as whole weight words, within the memory."""
        size = word_bytes(self.identity.memories[LoadTarget.WEIGHTS].width)
        address = int.from_bytes(payload[1:LOAD_HEADER_BYTES], "little")
        data = payload[LOAD_HEADER_BYTES:]
        weights = self.memories[LoadTarget.WEIGHTS]
        for k in range(0, len(data) - size + 1, size):
            if address < len(weights):
                weights[address] = int.from_bytes(data[k:k + size], "little")
                address += 1
        self.model_loaded = False

    def _infer(self, payload):
        if not self.model_loaded:
            return Status.NO_MODEL, b""
        model = self.catalogue[self.loaded_id]
        size = frame_bytes(model.input.bits, model.input.size)
        count, rest = divmod(len(payload), size)
        if rest or not 1 <= count <= MAX_INFER_FRAMES:
            return Status.BAD_LENGTH, b""
        frames = np.frombuffer(payload, dtype=np.uint8).reshape(count, size)
        if model.input.bits == 1:
            # Bit 1 becomes a pixel above any threshold, bit 0 one below (the golden model
            # binarizes with pixels >= threshold).
            frames = (unpack_bits(frames, model.input.size) * 255).astype(np.uint8)
        self.counters["frames"] += count
        return Status.OK, bytes(infer(model, frames).classes.astype(np.uint8))


class GarbageBoard(FakeBoard):
    """Answers every request with 20 bytes of noise (no SYNC among them), as a board at another baud
    rate does."""

    def _answer(self, frame):
        self.requests.append((frame.code, frame.seq, frame.payload))
        noise = self._rng.integers(0, 256, 20, dtype=np.uint8).tobytes().replace(b"\xa5", b"\x5a")
        self._out.append([time.monotonic(), noise, 0])


@contextmanager
def _listening(handle):
    """Accept connections on a TCP port of 127.0.0.1 in a thread, each passed to ``handle(client,
    stop)`` (``stop``: a :class:`threading.Event` set when the block ends); yields the ``socket://`` URL."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def accept():
        listener.settimeout(0.05)
        while not stop.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            with client:
                handle(client, stop)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"socket://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join()
        listener.close()


def serve(fake):
    """Serve ``fake`` on a TCP port of 127.0.0.1 to one client at a time (as ``bnn serve-sim`` does);
    a context manager yielding the ``socket://`` URL."""
    fake.timeout = 0.005

    def pump(client, stop):
        while not stop.is_set():
            readable, _, _ = select.select([client], [], [], 0.005)
            if readable:
                try:
                    data = client.recv(4096)
                except OSError:
                    break
                if not data:
                    break
                fake.write(data)
            answer = fake.read(4096)
            if answer:
                client.sendall(answer)

    return _listening(pump)


def serve_busy():
    """A TCP port of 127.0.0.1 that closes every connection at once, as ``bnn serve-sim`` does while it
    serves another client; a context manager yielding the ``socket://`` URL."""
    return _listening(lambda client, stop: None)
