"""The serial link's protocol: the one definition of frames, codes and payloads.

The gateware (:mod:`hw.link`), the host (:mod:`host.link`) and the tests all import this module;
``docs/protocol.md`` describes the same thing for an implementation in another language.

Frame
-----
Every request and every response is one frame::

    SYNC  code  seq  length(2)  payload(length)  crc(2)

``SYNC`` is 0xA5; ``code`` is a :class:`Command` in a request and a :class:`Status` in a response;
``seq`` is the request's sequence number (0..255), echoed by its response; ``length`` and ``crc``
are little-endian. ``crc`` is CRC-16/CCITT-FALSE (polynomial 0x1021, initial value 0xFFFF, no bit
reflection, no final XOR) over ``code``, ``seq``, ``length`` and the payload: every byte after
``SYNC`` up to the CRC.

Every request gets exactly one response, in request order. Bytes other than ``SYNC`` between
frames are skipped (and counted). A frame whose bytes stop for longer than the board's timeout
is answered with :attr:`Status.TIMEOUT`.
"""

import binascii
import enum
import struct
from dataclasses import dataclass

SYNC = 0xA5
HEADER_BYTES = 5            # SYNC, code, seq, length
CRC_BYTES = 2
OVERHEAD_BYTES = HEADER_BYTES + CRC_BYTES
PROTOCOL_VERSION = 4
MODEL_ID_BYTES = 16
# The largest payloads a board accepts; a longer length field is answered BAD_LENGTH at once,
# so that a false SYNC in line noise cannot swallow many valid frames.
MAX_INFER_FRAMES = 16
LOAD_HEADER_BYTES = 3       # target, address (2, little-endian)
MAX_LOAD_DATA = 1024
# Frames the engine holds at once (one computing, one loading): a host keeps at most this many
# frames sent and not yet answered, so that the board never has to stall the serial line.
FRAMES_IN_FLIGHT = 2
# Requests a board queues for answering: a host keeps at most this many sent and not yet answered
# (beyond, the board stops taking bytes until one is answered, and the line overruns).
MAX_PENDING_REQUESTS = 4
# An INFER answer holds one byte per frame, its class: a network on the link has at most this many.
MAX_CLASSES = 256


class Command(enum.IntEnum):
    """Request codes."""
    IDENTIFY = 0x01     # payload: none; response: an Identity
    STATUS = 0x02       # payload: none; response: the Counters
    RESET = 0x03        # payload: none; resets the engine and the counters, keeps the model
    LOAD = 0x04         # payload: target, address, at least one byte of words (see LoadTarget)
    INFER = 0x05        # payload: 1..MAX_INFER_FRAMES frames; response: one class byte per frame


class Status(enum.IntEnum):
    """Response codes: OK, or why the request was not carried out."""
    OK = 0x00
    BAD_CRC = 0x01           # the frame's CRC does not match (its seq may be corrupt too)
    UNKNOWN_COMMAND = 0x02
    BAD_LENGTH = 0x03        # wrong length for the command, above its limit, or over MAX_INFER_FRAMES frames
    TIMEOUT = 0x04           # the frame stopped mid-way
    BAD_ADDRESS = 0x05       # a load outside the target memory, or an unknown target
    BUSY = 0x06              # LOAD while frames are in flight or an IDENTIFY or STATUS is unanswered
    NO_MODEL = 0x07          # INFER while no complete model is loaded
    ABORTED = 0x08           # INFER whose frames were stopped by a RESET or the engine's watchdog


class LoadTarget(enum.IntEnum):
    """Memories a LOAD writes. Each is ``depth`` words of ``width`` bits (from the Identity); a
    word travels as ``ceil(width / 8)`` bytes, little-endian, and the load's data is whole words
    written from ``address`` up. Any load but MODEL_ID marks the board as holding no model; a
    load of MODEL_ID (the last step of loading a model) marks it as holding that model."""
    WEIGHTS = 0
    STARTS = 1
    DESCRIPTORS = 2
    NETWORK = 3
    MODEL_ID = 4


def crc16(data, crc=0xFFFF):
    """CRC-16/CCITT-FALSE of ``data`` (bytes), continuing from ``crc`` (:func:`binascii.crc_hqx` is
    this CRC)."""
    return binascii.crc_hqx(data, crc)


def encode_frame(code, seq, payload=b""):
    """The bytes of one frame."""
    if not 0 <= seq <= 255:
        raise ValueError(f"sequence number must be 0..255, not {seq!r}")
    if len(payload) > 0xFFFF:
        raise ValueError(f"payload of {len(payload)} bytes is longer than 65535")
    body = bytes([int(code), seq]) + len(payload).to_bytes(2, "little") + bytes(payload)
    return bytes([SYNC]) + body + crc16(body).to_bytes(2, "little")


@dataclass(frozen=True)
class Frame:
    code: int
    seq: int
    payload: bytes


class FrameDecoder:
    """Splits a byte stream into frames: :meth:`feed` bytes, get the complete frames back.

    Bytes before a ``SYNC`` are skipped (counted in :attr:`skipped`); a frame with a bad CRC or a
    length above ``max_length`` is dropped (counted in :attr:`bad_frames`) and the search for the
    next ``SYNC`` resumes at the byte after the dropped frame's ``SYNC``.
    """

    def __init__(self, max_length=0xFFFF):
        self._buffer = bytearray()
        self._max_length = max_length
        self.skipped = 0
        self.bad_frames = 0

    def feed(self, data):
        self._buffer += data
        frames = []
        while True:
            start = self._buffer.find(SYNC)
            if start < 0:
                self.skipped += len(self._buffer)
                self._buffer.clear()
                return frames
            self.skipped += start
            del self._buffer[:start]
            if len(self._buffer) < HEADER_BYTES:
                return frames
            length = int.from_bytes(self._buffer[3:5], "little")
            if length > self._max_length:
                self.bad_frames += 1
                del self._buffer[:1]
                continue
            end = HEADER_BYTES + length + CRC_BYTES
            if len(self._buffer) < end:
                return frames
            body = bytes(self._buffer[1:HEADER_BYTES + length])
            if crc16(body) != int.from_bytes(self._buffer[end - 2:end], "little"):
                self.bad_frames += 1
                del self._buffer[:1]
                continue
            frames.append(Frame(body[0], body[1], body[4:]))
            del self._buffer[:end]

    def drop_partial(self):
        """Give up on the incomplete frame held (its bytes stopped: cut off, or a SYNC in noise
        whose length asks for more bytes than will come) and search again from the byte after its
        SYNC, as for a frame with a bad CRC. Returns the frames found in the bytes after it."""
        if not self._buffer:
            return []
        held = bytes(self._buffer[1:])
        self._buffer.clear()
        self.bad_frames += 1
        return self.feed(held)


def word_bytes(width):
    """Bytes of one word of ``width`` bits on the link."""
    return -(-width // 8)


@dataclass(frozen=True)
class Memory:
    """A load target's size: ``depth`` words of ``width`` bits."""
    depth: int
    width: int


# The Identity's fixed fields: (name, struct format), little-endian, in order.
IDENTITY_FIELDS = (
    ("magic", "4s"),            # b"BNN\0"
    ("protocol", "B"),          # PROTOCOL_VERSION
    ("gateware", "H"),          # hw.link.GATEWARE_VERSION
    ("clock_hz", "I"),
    ("baud", "I"),
    ("timeout_cycles", "I"),    # a frame whose next byte is this late is answered TIMEOUT
    ("weights_in_spram", "B"),  # 1: the weight memory is not in the bitstream (load a model first)
    ("pe", "H"), ("simd", "H"), ("input_bits", "B"), ("pixels_per_beat", "B"), ("tree_stages", "B"),
    ("acc_width", "B"), ("start_width", "B"), ("score_width", "B"),
    ("input_words", "H"), ("act_words", "H"), ("max_layers", "H"), ("score_count", "H"),
    ("conv", "B"),              # 1: a conv engine (windows; docs/engine.md), 0: fully connected networks only
    ("gather_rows", "B"),       # window rows one slice gathers from (conv engines; 1 otherwise)
)
IDENTITY_MAGIC = b"BNN\0"
_IDENTITY_STRUCT = struct.Struct("<" + "".join(f for _, f in IDENTITY_FIELDS))
_MEMORY_STRUCT = struct.Struct("<IH")


@dataclass(frozen=True)
class Identity:
    """What IDENTIFY returns: the fixed fields, the load targets' sizes (in :class:`LoadTarget`
    order, each depth as u32 and width as u16), then a byte that is 1 if a complete model is
    loaded, and the model's id (:data:`MODEL_ID_BYTES` bytes; zeros when none is)."""
    magic: bytes
    protocol: int
    gateware: int
    clock_hz: int
    baud: int
    timeout_cycles: int
    weights_in_spram: int
    pe: int
    simd: int
    input_bits: int
    pixels_per_beat: int
    tree_stages: int
    acc_width: int
    start_width: int
    score_width: int
    input_words: int
    act_words: int
    max_layers: int
    score_count: int
    conv: int
    gather_rows: int
    memories: tuple        # Memory per LoadTarget
    model_loaded: bool
    model_id: bytes

    def fixed_bytes(self):
        """The part of the payload that does not change at run time (the gateware's ROM)."""
        values = [getattr(self, name) for name, _ in IDENTITY_FIELDS]
        return _IDENTITY_STRUCT.pack(*values) + b"".join(
            _MEMORY_STRUCT.pack(m.depth, m.width) for m in self.memories)

    def encode(self):
        return self.fixed_bytes() + bytes([int(self.model_loaded)]) + self.model_id

    @classmethod
    def decode(cls, payload):
        """Raises ValueError on a payload of the wrong size or magic."""
        if len(payload) != IDENTITY_BYTES:
            raise ValueError(f"an identity is {IDENTITY_BYTES} bytes, not {len(payload)}")
        values = _IDENTITY_STRUCT.unpack_from(payload)
        if values[0] != IDENTITY_MAGIC:
            raise ValueError(f"identity magic {values[0]!r} is not {IDENTITY_MAGIC!r}")
        offset = _IDENTITY_STRUCT.size
        memories = []
        for _ in LoadTarget:
            memories.append(Memory(*_MEMORY_STRUCT.unpack_from(payload, offset)))
            offset += _MEMORY_STRUCT.size
        return cls(*values, memories=tuple(memories), model_loaded=bool(payload[offset]),
                   model_id=bytes(payload[offset + 1:]))


IDENTITY_BYTES = _IDENTITY_STRUCT.size + len(LoadTarget) * _MEMORY_STRUCT.size + 1 + MODEL_ID_BYTES


# STATUS's payload: the counters, in order, each little-endian and wrapping at its width.
COUNTERS = (
    ("frames", 4),            # frames computed since the last RESET (or power-up), dropped answers included
    ("bad_crc", 2),
    ("bad_length", 2),
    ("unknown_command", 2),
    ("timeouts", 2),
    ("framing_errors", 2),    # UART stop bits that read 0 (line breaks included)
    ("overruns", 2),          # bytes lost because the previous one was not taken in time
    ("skipped_bytes", 2),     # bytes outside frames (looking for SYNC)
)


def decode_counters(payload):
    """``{name: value}`` of a STATUS payload; raises ValueError on a wrong size."""
    size = sum(n for _, n in COUNTERS)
    if len(payload) != size:
        raise ValueError(f"a status is {size} bytes, not {len(payload)}")
    values, offset = {}, 0
    for name, n in COUNTERS:
        values[name] = int.from_bytes(payload[offset:offset + n], "little")
        offset += n
    return values


def frame_bytes(input_bits, input_size):
    """Bytes of one input frame in an INFER payload: ``input_size`` pixel bytes for an 8-bit
    model; for a 1-bit model the binarized pixels packed as :mod:`model.bits` defines (pixel
    ``i`` is bit ``i % 8`` of byte ``i // 8``)."""
    return input_size if input_bits == 8 else -(-input_size // 8)


def link_bound_fps(baud, frame_size, frames_per_request):
    """Frames per second the serial line carries at most, requests back to back: 10 bits per byte
    (8N1), ``frames_per_request`` frames of ``frame_size`` bytes plus the frame overhead."""
    request = OVERHEAD_BYTES + frames_per_request * frame_size
    return baud / 10 / request * frames_per_request


def watchdog_cycles(*, weight_depth, max_layers, input_words, act_words, simd, tree_stages, conv):
    """Clock cycles the board waits for the engine's next result while frames are in it before it
    stops the engine and answers their INFERs ABORTED (docs/protocol.md, "The engine's watchdog").

    Twice the most any network that fits the memories can take to load and compute a frame (each
    command of a layer uses a weight word, ``weight_depth`` of them in all, 8 bit planes at most,
    once per output position: at most a map's ``max(input_words, act_words) * simd`` values in a
    ``conv`` engine), with a fixed margin, rounded up to a power of two.
    """
    positions = max(input_words, act_words) * simd if conv else 1
    compute = 8 * weight_depth * positions + max_layers * (8 + tree_stages) + 16
    load = input_words * simd + 8 * input_words
    return 1 << (2 * (compute + load) + 64 - 1).bit_length()
