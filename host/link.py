"""The host side of the serial link: requests and responses of :mod:`layout.protocol` over a pyserial port.

A :class:`Link` sends requests and matches their responses by sequence number. Requests that get
an error response, no response within the timeout, or whose response was lost (a later request's
answer arrived first, and the board answers in request order) are sent again under a new sequence
number, up to ``retries`` times; after that their frames are reported as failed. An answer is only
ever taken from an OK response whose sequence number is outstanding and whose payload has one
class byte per frame of the request: the host never guesses.

A model load is the exception: the board writes a LOAD's data as it arrives, before it checks the
CRC, so a LOAD corrupted on the line (its target or address byte) may have written another part of
the model and still be answered BAD_CRC. Sending that request again would leave the other part
wrong; after any failed LOAD the whole load starts again from its first request instead (every
LOAD marks the board as holding no model until the final MODEL_ID, so nothing is lost).

A board's identity is checked by :mod:`host.identity`, ports are opened by :mod:`host.port`, and
the payloads of INFER and LOAD requests are built by :mod:`host.payloads`.
"""

import logging
import math
import time
from collections import Counter, deque
from dataclasses import dataclass, field

import serial

from host.errors import ConnectionLostError, LinkError, NoAnswerError
from host.identity import IdentityError, check_identity
from host.payloads import load_requests
from host.port import _POLL, _SOCKET, BusyError, PortError, _reason, default_timeout, open_port
from layout.images import memory_images, model_id
from layout.protocol import (COUNTERS, FRAMES_IN_FLIGHT, IDENTITY_BYTES, IDENTITY_MAGIC, LOAD_HEADER_BYTES,
                             MAX_INFER_FRAMES, PROTOCOL_VERSION, Command, FrameDecoder, Identity, LoadTarget,
                             Status, decode_counters, encode_frame)

# What a caller of a Link needs, and the errors it raises.
__all__ = ["Link", "LinkStats", "LinkError", "NoAnswerError", "ConnectionLostError", "IdentityError", "PortError",
           "BusyError", "counters_delta"]

log = logging.getLogger("bnn")

# Longer than any response (an Identity is under 100 bytes): a SYNC in line noise followed by a
# large length field is dropped at once instead of holding up the frames behind it.
_MAX_RESPONSE_PAYLOAD = IDENTITY_BYTES
# How an attempt that heard no response ends (the last failure a request reports).
_NO_ANSWER = "no answer"
# A LOAD answered BUSY (frames in flight, or an IDENTIFY or STATUS unanswered) waits this long before it is sent again.
_BUSY_WAIT = 0.01
# Retries of a request while the port has sent bytes but never a frame: a peer at another baud
# rate, or no board, which sending again does not mend (one retry covers a board that came up late).
_UNFRAMED_RETRIES = 1
# Seconds after the first byte from a port that never sent a frame at which the host says so.
_SAY_AFTER = 2.0


@dataclass
class LinkStats:
    """What a :class:`Link` counted since it was opened."""
    requests: int = 0                 # frames sent, retries included
    retries: int = 0                  # requests sent again (after an error, a timeout or a lost answer)
    timeouts: int = 0                 # requests without an answer within the timeout
    lost: int = 0                     # requests overtaken by a later request's answer
    errors: Counter = field(default_factory=Counter)   # error responses by Status name
    ignored: int = 0                  # responses to no outstanding request (late, or a corrupt seq)
    malformed: int = 0                # OK responses of the wrong length
    failed: int = 0                   # frames given up on after the retries
    load_restarts: int = 0            # model loads started again from their first request after a failed LOAD
    reloads: int = 0                  # models loaded again after NO_MODEL during infer (in total)
    latencies: list = field(default_factory=list)      # seconds from a frame's request to its answer

    def as_dict(self):
        return {"requests": self.requests, "retries": self.retries, "timeouts": self.timeouts,
                "lost": self.lost, "errors": dict(self.errors), "ignored_responses": self.ignored,
                "malformed_responses": self.malformed, "failed": self.failed,
                "load_restarts": self.load_restarts, "reloads": self.reloads}


@dataclass
class _Request:
    command: Command
    payload: bytes
    first: int = 0          # INFER: index of the first frame
    count: int = 0          # INFER: frames in the request
    attempts: int = 0
    seq: int = -1
    order: int = -1         # position in send order, over the link's life
    sent_at: float = 0.0


class Link:
    """Requests and responses over ``port``, a pyserial-like object (``read``, ``write``,
    ``timeout``, ``in_waiting``, ``close``).

    Use :meth:`open` for a URL. ``timeout`` is the seconds to wait for a response, ``retries`` how
    many times a request is sent again before giving up; ``name`` names the port in messages.
    """

    def __init__(self, port, *, timeout, retries=3, name="the board"):
        if not timeout > 0:
            raise ValueError(f"timeout must be positive, not {timeout!r}")
        if retries < 0:
            raise ValueError(f"retries must be non-negative, not {retries!r}")
        self._port = port
        # Reads return at the first byte or after this poll interval: setting a serial port's
        # timeout before every read would reconfigure the device each time.
        port.timeout = min(timeout, _POLL)
        self._timeout = timeout
        self._retries = retries
        self._name = name
        self._decoder = FrameDecoder(max_length=_MAX_RESPONSE_PAYLOAD)
        self._next_seq = 0
        self._sent = 0
        self._received = 0          # bytes ever received
        self._first_byte_at = None  # when the first one came
        self._framed = False        # any frame ever received
        self._said = False          # a status line said that no frame came
        self._calling = None        # the request _call is sending
        # reloads (see infer) since a frame was last answered: only these count toward the limit
        self._reloads_in_a_row = 0
        self.stats = LinkStats()

    @classmethod
    def open(cls, url, *, baud, timeout=None, retries=3):
        """Open a pyserial URL (``/dev/ttyUSB1``, ``socket://127.0.0.1:PORT``, ...); ``timeout``
        defaults to :func:`~host.port.default_timeout`. Raises :class:`~host.port.PortError` if the port
        does not open (:func:`~host.port.open_port`)."""
        timeout = default_timeout(url) if timeout is None else timeout
        return cls(open_port(url, baud=baud), timeout=timeout, retries=retries, name=url)

    def close(self):
        self._port.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def timeout(self):
        return self._timeout

    @property
    def heard(self):
        """True once any byte has been received from the port."""
        return self._first_byte_at is not None

    @property
    def skipped_bytes(self):
        """Bytes received outside frames, and frames dropped for a bad CRC or length."""
        return self._decoder.skipped, self._decoder.bad_frames

    # -- the commands

    def identify(self):
        """The board's :class:`~layout.protocol.Identity`, checked by :func:`host.identity.check_identity`."""
        payload = self._call(Command.IDENTIFY)
        # the version first: another version's identity may have another size
        protocol = payload[len(IDENTITY_MAGIC)] if payload[:len(IDENTITY_MAGIC)] == IDENTITY_MAGIC \
            and len(payload) > len(IDENTITY_MAGIC) else PROTOCOL_VERSION
        if protocol != PROTOCOL_VERSION:
            raise IdentityError(f"{self._name} speaks protocol version {protocol}, this host "
                                f"version {PROTOCOL_VERSION}")
        try:
            identity = Identity.decode(payload)
        except ValueError as e:
            raise IdentityError(f"bad identity from {self._name}: {e}") from None
        check_identity(identity, self._name)
        return identity

    def status(self):
        """The board's counters, ``{name: value}`` in :data:`~layout.protocol.COUNTERS` order."""
        payload = self._call(Command.STATUS)
        try:
            return decode_counters(payload)
        except ValueError as e:
            raise LinkError(f"bad status from {self._name}: {e}") from None

    def reset(self):
        """Reset the board's engine and counters; it keeps its model."""
        self._call(Command.RESET)

    def load(self, compiled, identity, *, progress=None):
        """Write ``compiled`` (laid out by :func:`host.board.compile_for_board`) into the board, then
        check that the board reports it. ``progress(done, total)`` is called after each request,
        in bytes of load data (it starts again from 0 when the load does).

        The requests go one at a time. After any failed request (an error status or no answer) the
        load starts again from its first request (see the module), up to ``retries`` times; then
        :class:`LinkError`."""
        requests = load_requests(memory_images(compiled), identity.memories)
        total = sum(len(r) - LOAD_HEADER_BYTES for r in requests)
        for attempt in range(self._retries + 1):
            if attempt:
                self.stats.load_restarts += 1
                self.stats.retries += 1         # the failed request goes again, with the whole load
            done = 0
            for payload in requests:
                answer, last = self._attempt(_Request(Command.LOAD, payload))
                if answer is None:
                    break
                done += len(payload) - LOAD_HEADER_BYTES
                if progress is not None:
                    progress(done, total)
            else:
                break
        else:
            tries = f"{self._retries + 1} attempt{'s' if self._retries else ''}"
            raise LinkError(f"loading a model into {self._name} failed after {tries} (last: LOAD of "
                            f"{LoadTarget(payload[0]).name} at address "
                            f"{int.from_bytes(payload[1:LOAD_HEADER_BYTES], 'little')}: {last})")
        loaded = self.identify()
        if not loaded.model_loaded or loaded.model_id != model_id(compiled):
            raise LinkError(f"{self._name} does not report the model just loaded "
                            f"(holds {loaded.model_id.hex() if loaded.model_loaded else 'no model'})")
        return loaded

    def infer(self, frames, *, frames_per_request=1, reload=None):
        """Classify ``frames`` (an iterable of INFER frames, see :func:`host.payloads.input_frame`), pipelined.

        Yields ``(index, answer)`` as answers arrive (not necessarily in order): ``answer`` is the
        class, or None for a frame given up on after the retries. At most
        ``max(FRAMES_IN_FLIGHT, frames_per_request)`` frames are sent and not yet answered. On a
        NO_MODEL response, ``reload()`` (if given) is called once nothing is outstanding, and the
        frames are sent again; without it, :class:`LinkError`. More than ``retries`` reloads in a
        row, with no frame answered after any of them, is a :class:`LinkError` too (a board that
        cannot keep a model); a reload followed by an answer starts the count again, so a long
        stream on a noisy line may reload any number of times (:attr:`LinkStats.reloads` counts them all).
        """
        if not 1 <= frames_per_request <= MAX_INFER_FRAMES:
            raise LinkError(f"frames per request must be 1..{MAX_INFER_FRAMES}, not {frames_per_request}")
        window = max(FRAMES_IN_FLIGHT, frames_per_request)
        source = self._infer_requests(frames, frames_per_request)
        staged = None                    # the next new request, drawn from the source
        resend = deque()                 # requests to send again, before any new one
        outstanding = {}                 # seq -> _Request
        in_flight = 0                    # frames in the outstanding requests
        needs_reload = False
        done = []                        # (index, answer) to yield

        def retire(request):
            nonlocal in_flight
            del outstanding[request.seq]
            in_flight -= request.count

        def give_up_or_resend(request):
            if request.attempts > self._retries:
                self.stats.failed += request.count
                done.extend((request.first + k, None) for k in range(request.count))
            else:
                self.stats.retries += 1
                resend.append(request)

        while True:
            while not needs_reload:
                if not resend and staged is None:
                    staged = next(source, None)
                request = resend[0] if resend else staged
                if request is None or (in_flight and in_flight + request.count > window):
                    break
                if resend:
                    resend.popleft()
                else:
                    staged = None
                self._send(request)
                outstanding[request.seq] = request
                in_flight += request.count
            yield from done
            done.clear()
            if not outstanding:
                if not needs_reload:
                    return       # nothing outstanding and nothing was left to send
                self.stats.reloads += 1
                self._reloads_in_a_row += 1
                if self._reloads_in_a_row > self._retries:
                    raise LinkError(f"{self._name} lost its model {self._reloads_in_a_row} times in a row "
                                    f"(no frame answered after each reload)")
                reload()
                needs_reload = False
                continue
            deadline = min(r.sent_at for r in outstanding.values()) + self._timeout
            for response in self._receive(deadline):
                request = outstanding.get(response.seq)
                if request is None:
                    self.stats.ignored += 1
                    continue
                retire(request)
                if response.code == Status.OK and len(response.payload) == request.count:
                    self._reloads_in_a_row = 0
                    latency = time.monotonic() - request.sent_at
                    self.stats.latencies.extend([latency] * request.count)
                    done.extend((request.first + k, response.payload[k]) for k in range(request.count))
                    for earlier in [r for r in outstanding.values() if r.order < request.order]:
                        retire(earlier)        # its answer would have come first: it is lost
                        self.stats.lost += 1
                        give_up_or_resend(earlier)
                    continue
                if response.code == Status.OK:
                    self.stats.malformed += 1
                else:
                    self._count_error(response.code)
                if response.code == Status.NO_MODEL:
                    if reload is None:
                        raise LinkError(_no_model(self._name))
                    needs_reload = True
                    request.attempts -= 1      # the model's absence is not the request's fault
                give_up_or_resend(request)
            now = time.monotonic()
            for request in [r for r in outstanding.values() if now >= r.sent_at + self._timeout]:
                retire(request)
                self.stats.timeouts += 1
                self._check_heard()
                give_up_or_resend(request)

    # -- requests and responses

    def _infer_requests(self, frames, frames_per_request):
        batch, first = [], 0
        for index, frame in enumerate(frames):
            batch.append(bytes(frame))
            if len(batch) == frames_per_request:
                yield _Request(Command.INFER, b"".join(batch), first=first, count=len(batch))
                batch, first = [], index + 1
        if batch:
            yield _Request(Command.INFER, b"".join(batch), first=first, count=len(batch))

    def _call(self, command, payload=b""):
        """Send one request and return its OK response's payload, retrying as :meth:`infer` does;
        while the port has sent bytes but never a frame, retrying :data:`_UNFRAMED_RETRIES` times at
        most and saying so on the ``bnn`` logger before each retry."""
        request = self._calling = _Request(command, payload)
        last = _NO_ANSWER
        try:
            while request.attempts <= self._retries_now():
                if request.attempts:
                    self.stats.retries += 1
                    self._say_unframed("retrying")
                answer, last = self._attempt(request)
                if answer is not None:
                    return answer
        finally:
            self._calling = None
        tries = f"{request.attempts} attempt{'s' if request.attempts > 1 else ''}"
        if not self._framed:
            peer = "not a bnn serve-sim" if self._name.startswith(_SOCKET) else "another baud rate, or no board"
            raise LinkError(f"{command.name} to {self._name} failed after {tries}: heard {self._received} bytes "
                            f"and not one frame ({peer}?)")
        error = NoAnswerError if last == _NO_ANSWER else LinkError
        raise error(f"{command.name} to {self._name} failed after {tries} (last: {last})")

    def _retries_now(self):
        """The retries a request gets: :data:`_UNFRAMED_RETRIES` at most while the port has sent
        bytes but never a frame."""
        return self._retries if self._framed or not self.heard else min(self._retries, _UNFRAMED_RETRIES)

    def _say_unframed(self, doing):
        """Say on the ``bnn`` logger, if the port has sent bytes but never a frame, what the host
        does about it (``doing``) and how long it goes on at most: the rest of :meth:`_call`'s
        attempt, then its attempts still to come."""
        if self._framed or not self.heard:
            return
        self._said = True
        request = self._calling
        left = max(0.0, request.sent_at + self._timeout - time.monotonic()) \
            + (self._retries_now() + 1 - request.attempts) * self._timeout
        log.info(f"no valid answer from {self._name} yet (heard {self._received} bytes that are not a frame); "
                 f"{doing}, up to ~{math.ceil(left)} s more")

    def _attempt(self, request):
        """Send ``request`` once: ``(payload, None)`` of its OK response, or ``(None, why)`` after
        an error status (after BUSY, once :data:`_BUSY_WAIT` has passed) or no answer. NO_MODEL
        raises :class:`LinkError`."""
        self._send(request)
        response = self._response_to(request)
        if response is None:
            self.stats.timeouts += 1
            self._check_heard()
            return None, _NO_ANSWER
        if response.code == Status.OK:
            return response.payload, None
        self._count_error(response.code)
        if response.code == Status.NO_MODEL:
            raise LinkError(_no_model(self._name))
        if response.code == Status.BUSY:
            time.sleep(_BUSY_WAIT)
        return None, _status_name(response.code)

    def _response_to(self, request):
        """The response to ``request``, or None if none came within the timeout."""
        deadline = request.sent_at + self._timeout
        while time.monotonic() < deadline:
            for response in self._receive(deadline):
                if response.seq == request.seq:
                    return response
                self.stats.ignored += 1
        return None

    def _send(self, request):
        """Send ``request`` under a new sequence number."""
        request.attempts += 1
        request.seq = self._next_seq
        self._next_seq = (self._next_seq + 1) % 256
        request.order = self._sent
        self._sent += 1
        self.stats.requests += 1
        request.sent_at = time.monotonic()
        self._io(self._port.write, encode_frame(request.command, request.seq, request.payload))

    def _receive(self, deadline):
        """The frames decoded from what arrives before ``deadline`` (returns at the first ones).

        At the deadline, a frame still incomplete is given up on: its bytes stopped."""
        while True:
            if time.monotonic() >= deadline:
                return self._framing(self._decoder.drop_partial())
            data = self._io(self._port.read, max(1, self._port.in_waiting))
            if data:
                if self._first_byte_at is None:
                    self._first_byte_at = time.monotonic()
                self._received += len(data)
                frames = self._framing(self._decoder.feed(data))
                if frames:
                    return frames
            if not self._said and self._calling is not None and self.heard \
                    and time.monotonic() >= self._first_byte_at + _SAY_AFTER:
                self._say_unframed("waiting")

    def _framing(self, frames):
        """``frames``, noting that the port sends frames if there are any."""
        self._framed = self._framed or bool(frames)
        return frames

    def _io(self, method, argument):
        try:
            return method(argument)
        except (serial.SerialException, OSError) as e:
            if not self.heard and self._name.startswith(_SOCKET):
                raise BusyError(f"the simulated board at {self._name} is serving another client (it closed this "
                                f"connection before answering: bnn serve-sim serves one client at a time); try "
                                f"again once that client is done") from None
            raise ConnectionLostError(f"lost the connection to {self._name}: {_reason(e)}") from None

    def _check_heard(self):
        """A port that never sent a byte is no board: say so at the first timeout."""
        if not self.heard:
            raise NoAnswerError(f"no answer from {self._name} within {self._timeout:g} s: "
                            f"is the board / bnn serve-sim running?")

    def _count_error(self, code):
        self.stats.errors[_status_name(code)] += 1


def _no_model(name):
    return f"{name} holds no model: pass --model FILE to load one"


def _status_name(code):
    try:
        return Status(code).name
    except ValueError:
        return f"0x{code:02x}"


def counters_delta(before, after):
    """Counter increments between two :meth:`Link.status` readings, allowing for wrap-around."""
    widths = dict(COUNTERS)
    return {name: (after[name] - before[name]) % (1 << (8 * widths[name])) for name in after}
