"""A simulated board's serial line on a TCP socket.

:class:`BoardServer` listens on a TCP address and runs a byte-stream design (a
:class:`sim.board.SerialLine` around a board's core, compiled with CXXRTL) for one client at a
time: bytes from the socket go into the design's input stream, bytes from its output stream go
back to the socket. A client opens it like a serial port, e.g. with pyserial's
``serial.serial_for_url("socket://127.0.0.1:PORT")``.

Simulated time
--------------
The simulation advances, in chunks of ``chunk_cycles`` cycles, only while there is work: while
bytes from a client wait to go onto the line, and for ``idle_cycles`` cycles after the last byte
went onto it or came back from the board (the caller makes that window cover the board's receive
timeout plus its longest computation, so that a frame cut off half-way still times out, and every
answer is sent, in simulated time). Otherwise the server sleeps in ``select`` until a client
sends. Simulated time runs as fast as the simulator can: for a board's design that is slower than
the board's clock, so a pause in a client's bytes looks shorter to the simulated board than to a
real one, never longer. The client's reaction time is not simulated: each byte the board sends
reaches the client as soon as it is out, and once the board has finished answering (no byte of
the client's waits to go onto the line, and the board has sent nothing for ``quiet_cycles``
cycles since its last byte), simulated time stops and waits a moment (wall time, up to
``_GRACE_SECONDS``) for the client's next bytes before it goes on with the line idle. A client
that waits for each answer before it sends again (one request at a time, or more frames per
request than the board holds) thus costs ``quiet_cycles`` of simulated time per answer, not its
reaction time. Frames per simulated second therefore measure the link and the board, as if the
host answered at once.

Clients
-------
One client at a time. A connection that arrives while a client is connected is closed at once,
before it is sent a byte (a host then says that the simulated board is serving another client,
instead of waiting for answers that would come only once the first client left); one that arrives
after the client left waits in the listening socket's queue. The board keeps its state from client
to client, as a real board does when its serial port is closed and opened again. Bytes a client
sent before it left still go onto the line (a half-sent frame then times out on the board); what
the board sends after its client left is lost and counted in :attr:`ServeStats.bytes_dropped`. The
next client is accepted once the board is quiet (no byte waiting, the idle window passed), so that
it never receives answers meant for the one before.
"""

import select
import socket
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass

import numpy as np

from model.errors import BnnError

__all__ = ["ServeError", "ServeStats", "BoardServer", "serve", "serving_in_background", "DEFAULT_CHUNK_CYCLES",
           "DEFAULT_QUIET_CYCLES"]

# Cycles per call into the simulator while busy: small enough that a chunk takes milliseconds
# (a client's bytes and a stop request are looked at between chunks), large enough that the
# per-call overhead does not count.
DEFAULT_CHUNK_CYCLES = 20_000
# Cycles without a byte from the board, after its last one, that mark its answer as finished (when
# no client byte waits): about 3 byte times at 3 Mbaud with 12 cycles per bit (the iCEBreaker's).
# Pass 3 byte times of the board at hand (``sim.board.SimulatedBoard.quiet_cycles``).
DEFAULT_QUIET_CYCLES = 360
# How often an idle server looks at its stop event.
_POLL_SECONDS = 0.1
# How long simulated time waits for a client's next bytes once the board has finished answering.
_GRACE_SECONDS = 0.02
# Bytes read from a client ahead of the simulated line, and board output held for a client that
# does not read: beyond these the server stops reading the client's socket (TCP back-pressure).
_MAX_PENDING = 1 << 16
_MAX_OUTGOING = 1 << 20
_BACKLOG = 8


class ServeError(BnnError):
    """The server cannot listen on the address asked for."""


@dataclass
class ServeStats:
    """What a server did; updated as it runs.

    ``bytes_in``: bytes received from clients. ``bytes_out``: bytes the board sent that reached
    a client. ``bytes_dropped``: bytes the board sent while no client was connected, or to a
    client that left before reading them. ``cycles``: cycles simulated while serving.
    ``clients``: connections accepted. ``refused``: connections closed at once while a client was
    connected.
    """

    bytes_in: int = 0
    bytes_out: int = 0
    bytes_dropped: int = 0
    cycles: int = 0
    clients: int = 0
    refused: int = 0

    def as_dict(self):
        return asdict(self)


def _format_address(address):
    host, port = address[:2]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class BoardServer:
    """A listening TCP socket that serves a simulated board's serial line (see the module).

    Binding happens here, so that an address in use is reported before a long build; serving
    happens in :meth:`run`.

    Parameters
    ----------
    host : str
        Address or name to listen on (``"127.0.0.1"``, ``"::1"``, ``"localhost"``).
    port : int
        TCP port; 0 picks a free one (:attr:`address` says which).

    Raises
    ------
    ServeError
        If the address does not resolve or cannot be bound (in use, no permission).
    """

    def __init__(self, host, port):
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValueError(f"port must be an integer in 0..65535, not {port!r}")
        try:
            family, _, _, _, address = socket.getaddrinfo(
                host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
            self._listener = socket.create_server(address, family=family, backlog=_BACKLOG)
        except OSError as e:
            raise ServeError(f"cannot listen on {_format_address((host, port))}: "
                             f"{e.strerror or e}") from None
        self._stats = ServeStats()

    @property
    def address(self):
        """``(host, port)`` the server listens on."""
        return self._listener.getsockname()[:2]

    @property
    def address_text(self):
        """:attr:`address` as ``HOST:PORT`` (``[HOST]:PORT`` for IPv6)."""
        return _format_address(self.address)

    @property
    def stats(self):
        """The :class:`ServeStats`, live."""
        return self._stats

    def close(self):
        """Stop listening (:meth:`run` does this when it returns)."""
        self._listener.close()

    def run(self, simulator, *, idle_cycles, quiet_cycles=DEFAULT_QUIET_CYCLES, chunk_cycles=DEFAULT_CHUNK_CYCLES,
            stop=None, on_listening=None, log=None):
        """Serve clients until ``stop`` (a :class:`threading.Event`) is set; return the stats.

        ``simulator`` is a :class:`sim.cxxrtl.StreamSimulator` of a design with 8-bit input and
        output streams, whose output is always taken. ``idle_cycles``, ``quiet_cycles`` (a few
        byte times of the board's line: longer than any pause inside one of its answers would be
        best, though a shorter one only costs wall time) and ``chunk_cycles`` are described in the
        module. ``on_listening(address)`` is called once, as serving starts;
        ``log(message)`` once per client arriving, leaving or refused. Closes the listening socket when
        it returns (also on an error of the simulator, which propagates).
        """
        for name, value in (("idle_cycles", idle_cycles), ("quiet_cycles", quiet_cycles),
                            ("chunk_cycles", chunk_cycles)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, not {value!r}")
        if (simulator.model.input_width, simulator.model.output_width) != (8, 8):
            raise ValueError(f"the simulated design must have 8-bit streams, not "
                             f"{simulator.model.input_width} and {simulator.model.output_width} bits")
        stop = threading.Event() if stop is None else stop
        log = log or (lambda message: None)
        session = _Session(simulator, self._stats, idle_cycles, quiet_cycles, chunk_cycles, log)
        try:
            if on_listening is not None:
                on_listening(self.address)
            while not stop.is_set():
                session.step(self._listener, session.wait_seconds())
        finally:
            session.disconnect("closed: the server is stopping")
            self.close()
        return self._stats


class _Session:
    """The state of one :meth:`BoardServer.run`: the client, the bytes in flight, simulated time."""

    def __init__(self, simulator, stats, idle_cycles, quiet_cycles, chunk_cycles, log):
        self.simulator = simulator
        self.stats = stats
        self.idle_cycles = idle_cycles
        self.quiet_cycles = quiet_cycles
        self.chunk_cycles = chunk_cycles
        self.log = log
        self.client = None
        self.peer = None
        self.pending = bytearray()    # from clients, not yet taken by the host's UART
        self.outgoing = bytearray()   # from the board, not yet sent to the client
        self.busy_until = simulator.cycle   # the cycle at which the idle window closes
        # the cycle at which the board's answer counts as finished (None: no byte out since the
        # last grace wait or the client's last byte onto the line)
        self.quiet_at = None
        self.grace_until = None             # wall time (monotonic) at which the grace wait ends

    @property
    def busy(self):
        return bool(self.pending) or self.simulator.cycle < self.busy_until

    def waiting_for_client(self):
        """Whether simulated time stands still for the client's next bytes: the client's reaction
        time is not simulated, so once the board has finished answering, simulated time waits
        (up to _GRACE_SECONDS) for more bytes before it goes on with the line idle."""
        if self.grace_until is None:
            return False
        if self.pending or self.client is None or time.monotonic() >= self.grace_until:
            self.grace_until = None
            return False
        return True

    def wait_seconds(self):
        """How long to wait for the sockets before the next chunk."""
        if self.waiting_for_client():
            return max(0.0, self.grace_until - time.monotonic())
        return 0 if self.busy else _POLL_SECONDS

    def step(self, listener, timeout):
        """Wait up to ``timeout`` seconds for the sockets, move bytes, then simulate one chunk if busy.

        A new connection is accepted once no client is connected and the board is quiet, and
        refused (:meth:`refuse`) while a client is connected."""
        readers, writers = [], []
        if self.client is None:
            if not self.busy:
                readers.append(listener)
        else:
            readers.append(listener)
            if len(self.pending) < _MAX_PENDING and len(self.outgoing) < _MAX_OUTGOING:
                readers.append(self.client)
            if self.outgoing:
                writers.append(self.client)
        readable, writable, _ = select.select(readers, writers, [], timeout)
        if self.client in readable:
            self.receive()
        if listener in readable:
            if self.client is not None:
                self.refuse(listener)
            elif not self.busy:      # else it waits: the client just left, the board is not yet quiet
                self.accept(listener)
        if writable and self.client is not None:
            self.send()
        if self.busy and not self.waiting_for_client():
            self.simulate()

    def accept(self, listener):
        try:
            client, peer = listener.accept()
        except OSError:
            return  # the connection went away while queued
        client.setblocking(False)
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.client, self.peer = client, _format_address(peer)
        self.stats.clients += 1
        self.log(f"client {self.peer} connected")

    def refuse(self, listener):
        """Close a new connection at once, since a client is connected: unless that client has left
        (its bytes, then its end, are read first); then the new one waits in the queue."""
        while self.client is not None and len(self.pending) < _MAX_PENDING and self.receive():
            pass
        if self.client is None:
            return
        try:
            refused, peer = listener.accept()
        except OSError:
            return  # the connection went away while queued
        refused.close()
        self.stats.refused += 1
        self.log(f"client {_format_address(peer)} refused: serving {self.peer}")

    def receive(self):
        """Read the client's bytes; True if some came (False: none yet, or the client left)."""
        try:
            data = self.client.recv(_MAX_PENDING - len(self.pending))
        except BlockingIOError:
            return False
        except OSError as e:
            self.disconnect(f"connection error: {e.strerror or e}")
            return False
        if not data:
            self.disconnect("disconnected")
            return False
        self.pending += data
        self.stats.bytes_in += len(data)
        return True

    def send(self):
        try:
            sent = self.client.send(self.outgoing)
        except BlockingIOError:
            return
        except OSError as e:
            self.disconnect(f"connection error: {e.strerror or e}")
            return
        del self.outgoing[:sent]
        self.stats.bytes_out += sent

    def disconnect(self, why):
        if self.client is None:
            return
        self.client.close()
        self.stats.bytes_dropped += len(self.outgoing)
        self.outgoing.clear()
        self.log(f"client {self.peer} {why}")
        self.client = self.peer = None

    def simulate(self):
        """One chunk of simulated time: at most ``chunk_cycles``, and once no byte waits to go onto
        the line, no further than the idle window, nor than the end of the board's answer (where
        the grace wait for the client starts)."""
        simulator = self.simulator
        if self.pending:
            budget = self.chunk_cycles
        else:
            budget = min(self.chunk_cycles, self.busy_until - simulator.cycle)
            if self.quiet_at is not None:
                if simulator.cycle >= self.quiet_at:
                    self.quiet_at = None
                    if self.client is not None:
                        self.grace_until = time.monotonic() + _GRACE_SECONDS
                        return
                else:
                    budget = min(budget, self.quiet_at - simulator.cycle)
        if budget <= 0:
            return
        start = simulator.cycle
        # stopping once the pending bytes are taken lets the idle window bound the next chunk
        # stopping at the first byte out sends it to the client at once, in simulated time
        batch = simulator.run(np.frombuffer(bytes(self.pending), dtype=np.uint8), max_cycles=budget,
                              stop_consumed=len(self.pending) or None, max_outputs=1)
        self.stats.cycles += simulator.cycle - start
        if batch.consumed:
            del self.pending[:batch.consumed]
            self.quiet_at = None      # the board's answer to these bytes is still to come
            self.busy_until = max(self.busy_until, int(batch.in_cycles[-1]) + 1 + self.idle_cycles)
        if len(batch.out_payloads):
            self.busy_until = max(self.busy_until, int(batch.out_cycles[-1]) + 1 + self.idle_cycles)
            self.quiet_at = int(batch.out_cycles[-1]) + 1 + self.quiet_cycles
            if self.client is None:
                self.stats.bytes_dropped += len(batch.out_payloads)
            else:
                self.outgoing += batch.out_payloads.astype(np.uint8).tobytes()
                self.send()


def serve(simulator, *, host, port, idle_cycles, quiet_cycles=DEFAULT_QUIET_CYCLES,
          chunk_cycles=DEFAULT_CHUNK_CYCLES, stop=None, on_listening=None, log=None):
    """Listen on ``host:port`` and serve ``simulator`` until ``stop`` is set: a
    :class:`BoardServer` and its :meth:`~BoardServer.run` in one call. Returns the
    :class:`ServeStats`."""
    return BoardServer(host, port).run(simulator, idle_cycles=idle_cycles, quiet_cycles=quiet_cycles,
                                       chunk_cycles=chunk_cycles, stop=stop, on_listening=on_listening, log=log)


@contextmanager
def serving_in_background(simulator, *, idle_cycles, quiet_cycles=DEFAULT_QUIET_CYCLES, host="127.0.0.1", port=0,
                          **options):
    """A :class:`BoardServer` on ``host:port`` (default: a free port of 127.0.0.1) serving
    ``simulator`` in a thread (``quiet_cycles`` and ``options`` go to :meth:`BoardServer.run`); yields
    ``(server, stop)``. On the way out it stops the server, waits for it, and raises what the
    server raised, if anything."""
    server = BoardServer(host, port)
    stop = threading.Event()
    failures = []

    def run():
        try:
            server.run(simulator, idle_cycles=idle_cycles, quiet_cycles=quiet_cycles, stop=stop, **options)
        except BaseException as failure:
            failures.append(failure)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield server, stop
    finally:
        stop.set()
        thread.join(timeout=5.0)
    if thread.is_alive():
        raise ServeError("the simulated board's server did not stop within 5 s")
    if failures:
        raise failures[0]
