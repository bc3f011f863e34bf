"""The simulated board on a TCP socket: :mod:`sim.board`, :mod:`sim.serve` and `bnn serve-sim`.

The board here is a stand-in with the serial-line interface of ``hw.link.LinkCore``: a UART
receiver whose bytes, plus one, go back out through a UART transmitter. It compiles in a second
or two. The command-line test runs `bnn serve-sim` in a subprocess with the stand-in in place of
``hw.link``.
"""

import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import types
from pathlib import Path

import numpy as np
import pytest
import serial
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from bnn.cli import main
from host.link import Link
from host.port import BusyError
from hw.boards import board
from hw.plan import fitting_folding, place_weights
from hw.uart import UartRx, UartTx, uart_divisor
from layout.compiler import compile_model as compile_engine, foldings
from model.modelfile import load_model
from sim.board import SerialLine
from sim.cxxrtl import StreamSimulator
from sim.cxxrtl_build import build_library, convert_stream_design
from sim.serve import BoardServer, ServeError, serve, serving_in_background

DIVISOR = 8
BYTE_CYCLES = 10 * DIVISOR
IDLE_CYCLES = 4_000


class EchoCore(wiring.Component):
    """Answers each byte received on ``rx`` with that byte plus one (mod 256) on ``tx``.

    Members
    -------
    rx : In(1)
    tx : Out(1)
    """

    rx: In(1, init=1)
    tx: Out(1, init=1)

    def __init__(self, divisor):
        self._divisor = divisor
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        m.submodules.rx = rx = UartRx(self._divisor)
        m.submodules.tx = tx = UartTx(self._divisor)
        m.d.comb += [rx.rx.eq(self.rx), self.tx.eq(tx.tx),
                     tx.data.payload.eq(rx.data.payload + 1), tx.data.valid.eq(rx.data.valid),
                     rx.data.ready.eq(tx.data.ready)]
        return m


class StandInLinkCore(EchoCore):
    """``hw.link.LinkCore``'s constructor and ``identity.timeout_cycles`` around an :class:`EchoCore`."""

    def __init__(self, compiled, *, clock_hz, baud, logic_memory_bits, weights_in_spram=False):
        divisor, _ = uart_divisor(clock_hz, baud)
        self.identity = types.SimpleNamespace(timeout_cycles=100 * divisor)
        super().__init__(divisor)


def echoed(data):
    return bytes((byte + 1) % 256 for byte in data)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cxxrtl-cache")


@pytest.fixture(scope="module")
def echo_board(cache):
    """The compiled :class:`SerialLine` around an :class:`EchoCore`."""
    return build_library(convert_stream_design(SerialLine(EchoCore(DIVISOR), DIVISOR)), cache=cache)


@pytest.fixture
def simulator(echo_board):
    with StreamSimulator(echo_board) as simulator:
        yield simulator


def running(simulator, **options):
    """:func:`sim.serve.serving_in_background` with this file's idle window."""
    return serving_in_background(simulator, idle_cycles=IDLE_CYCLES, **options)


def connect(server, timeout=10.0):
    # a read returns as soon as its bytes arrive: the timeout only bounds a failure, and must cover the
    # simulation on a loaded machine (a second client waits while the first one's bytes are dropped)
    return serial.serial_for_url(f"socket://127.0.0.1:{server.address[1]}", timeout=timeout)


def settled_cycles(server, timeout=2.0):
    """The server's cycle count once it stops changing (the idle window has passed)."""
    deadline = time.monotonic() + timeout
    last = server.stats.cycles
    while time.monotonic() < deadline:
        time.sleep(0.05)
        if server.stats.cycles == last:
            return last
        last = server.stats.cycles
    raise AssertionError("the simulation is still running")


@pytest.mark.needs_cxx
def test_serial_line_sends_and_receives_at_the_bit_rate(simulator):
    data = np.arange(0, 250, 7)
    batch = simulator.run(data, max_cycles=(len(data) + 2) * BYTE_CYCLES)
    assert batch.consumed == len(data)
    assert bytes(batch.out_payloads.astype(np.uint8)) == echoed(data.tolist())
    # back to back on the line both ways: one byte per 10 bit times
    assert set(np.diff(batch.in_cycles.astype(np.int64))) == {BYTE_CYCLES}
    assert set(np.diff(batch.out_cycles.astype(np.int64))) == {BYTE_CYCLES}
    # the echo's stop bit is sampled two bytes' time (less the half stop bit) after its byte went in
    latency = batch.out_cycles.astype(np.int64) - batch.in_cycles.astype(np.int64)
    assert set(latency) == {latency[0]} and 19 * DIVISOR <= latency[0] <= 21 * DIVISOR


def test_serial_line_checks_its_core():
    class NoSerial(wiring.Component):
        rx: In(1)
        def elaborate(self, platform):
            return Module()

    with pytest.raises(TypeError, match="members rx: In\\(1\\) and tx: Out\\(1\\)"):
        SerialLine(NoSerial(), DIVISOR)
    with pytest.raises(ValueError, match="divisor"):
        SerialLine(EchoCore(DIVISOR), 2)


@pytest.mark.needs_cxx
def test_a_client_gets_its_answers_and_time_stands_still_when_idle(simulator):
    with running(simulator) as (server, _):
        assert server.stats.cycles == 0
        with connect(server) as port:
            time.sleep(0.2)
            assert server.stats.cycles == 0        # connected, silent: no simulated time
            data = bytes(range(256)) * 4
            port.write(data)
            assert port.read(len(data)) == echoed(data)
            cycles = settled_cycles(server)
            # the bytes' time on the line, then the idle window and at most one chunk's rounding
            assert len(data) * BYTE_CYCLES < cycles <= len(data) * BYTE_CYCLES + 3 * BYTE_CYCLES + IDLE_CYCLES
            cpu = time.process_time()
            time.sleep(0.5)
            assert server.stats.cycles == cycles
            assert time.process_time() - cpu < 0.1   # no busy-waiting while idle
            port.write(b"\x41")
            assert port.read(1) == b"\x42"
        stats = server.stats
        assert (stats.bytes_in, stats.bytes_out, stats.clients) == (len(data) + 1, len(data) + 1, 1)


@pytest.mark.needs_cxx
def test_the_client_s_reaction_time_is_not_simulated(simulator):
    quiet = 3 * BYTE_CYCLES
    exchanges = 20
    with running(simulator, quiet_cycles=quiet) as (server, _):
        with connect(server) as port:
            for k in range(exchanges):          # one byte, then wait for its answer before the next
                port.write(bytes([k]))
                assert port.read(1) == bytes([k + 1])
            cycles = settled_cycles(server)
    # each exchange: the byte and its echo on the line (about 2 byte times), then at most the quiet
    # cycles while the board's answer counts as finished (the next byte may come sooner), then the
    # server waits for the client in wall time; the idle window runs once at the end. (Simulating
    # the client's reaction would cost up to an idle window per exchange; a few slow reactions, on a
    # busy machine, are allowed for.)
    assert exchanges * BYTE_CYCLES + IDLE_CYCLES < cycles
    assert cycles <= exchanges * (3 * BYTE_CYCLES + quiet) + IDLE_CYCLES + 3 * IDLE_CYCLES


@pytest.mark.needs_cxx
def test_a_client_leaving_mid_stream_does_not_disturb_the_next(simulator):
    with running(simulator) as (server, _):
        with connect(server) as first:
            first.write(bytes(range(256)) * 40)    # 0.8 M cycles on the line
            assert first.read(3) == echoed(b"\x00\x01\x02")
        with connect(server) as second:
            second.write(b"next")
            assert second.read(4) == echoed(b"next")
            second.timeout = 0.2
            assert second.read(1) == b""            # nothing left over from the first client
        stats = server.stats
        assert stats.clients == 2 and stats.bytes_dropped > 0
        assert stats.bytes_out + stats.bytes_dropped == stats.bytes_in <= 256 * 40 + 4


@pytest.mark.needs_cxx
def test_a_second_client_is_refused_while_the_first_is_served(simulator):
    log = []
    with running(simulator, log=log.append) as (server, _):
        url = f"socket://127.0.0.1:{server.address[1]}"
        with connect(server) as first:
            first.write(b"a")
            assert first.read(1) == b"b"
            with Link.open(url, baud=115200, timeout=2) as second:
                started = time.monotonic()
                with pytest.raises(BusyError, match=rf"^the simulated board at {url} is serving another client"):
                    second.identify()                   # closed at once, not left waiting for 2 s
                assert time.monotonic() - started < 1.0
            first.write(b"c")
            assert first.read(1) == b"d"               # the first client is still served
        with connect(server) as third:                 # and the next one once it has left
            third.write(b"x")
            assert third.read(1) == b"y"
        assert (server.stats.clients, server.stats.refused) == (2, 1)
    assert any(line.startswith("client 127.0.0.1:") and " refused: serving 127.0.0.1:" in line for line in log)


@pytest.mark.needs_cxx
def test_stop_ends_the_server_promptly_even_while_busy(simulator):
    with running(simulator) as (server, stop):
        with connect(server) as port:
            port.write(bytes(20_000))               # 1.6 M cycles of work
            assert port.read(1) == b"\x01"
            started = time.monotonic()
            stop.set()
    assert time.monotonic() - started < 1.0
    assert server.stats.bytes_in == 20_000 and server.stats.bytes_out < 20_000


@pytest.mark.needs_cxx
def test_serve_says_where_it_listens(simulator):
    stop = threading.Event()
    listening, answers, log = [], [], []

    def client(address):
        with serial.serial_for_url(f"socket://{address[0]}:{address[1]}", timeout=2) as port:
            port.write(b"\x7f")
            answers.append(port.read(1))
        stop.set()

    def on_listening(address):
        listening.append(address)
        threading.Thread(target=client, args=(address,), daemon=True).start()

    stats = serve(simulator, host="127.0.0.1", port=0, idle_cycles=IDLE_CYCLES, stop=stop,
                  on_listening=on_listening, log=log.append)
    assert listening[0][0] == "127.0.0.1" and listening[0][1] > 0
    assert answers == [b"\x80"] and (stats.bytes_in, stats.bytes_out, stats.clients) == (1, 1, 1)
    assert log[0].startswith("client 127.0.0.1:") and log[0].endswith(" connected")


def test_an_address_in_use_is_refused():
    server = BoardServer("127.0.0.1", 0)
    try:
        with pytest.raises(ServeError, match=f"cannot listen on 127.0.0.1:{server.address[1]}: "):
            BoardServer("127.0.0.1", server.address[1])
    finally:
        server.close()


def explicit_folding(model_file):
    """A P x S of the model at ``model_file`` that fits the iCEBreaker (as `bnn build` checks it)
    without being the default (the fastest that fits): the largest such, fewest PEs first."""
    model, icebreaker = load_model(model_file), board("icebreaker")
    fastest = fitting_folding(model, icebreaker, tree_stages=icebreaker.tree_stages)
    fitting = [(pe * simd, -pe, pe, simd) for pe, simd in foldings() if (pe, simd) != fastest
               and not place_weights(compile_engine(model, pe=pe, simd=simd, tree_stages=icebreaker.tree_stages),
                                     icebreaker)[1]]
    return max(fitting)[2:]


@pytest.mark.parametrize("listen, reason", [
    ("127.0.0.1:\u00b2", "the port '\u00b2' is not a number in 0..65535"),     # a digit to str.isdigit and int
    ("127.0.0.1:\u0661\u0662", "the port '\u0661\u0662' is not a number in 0..65535"),
    ("127.0.0.1:65536", "the port '65536' is not a number in 0..65535"),
    ("127.0.0.1:", "the port '' is not a number in 0..65535"),
    (":5000", "no host before :PORT"),
    ("[]:5000", "no host before :PORT"),
    ("::1:5000", "an IPv6 host goes in brackets ([::1]:5000)"),
    ("localhost", "no :PORT"),
])
def test_listen_takes_host_colon_port_strictly(listen, reason, capsys):
    assert main(["serve-sim", "--board", "icebreaker", "--model", "m.bnn", "--listen", listen]) == 1
    err = capsys.readouterr().err
    assert err == f"bnn serve-sim: error: --listen must be HOST:PORT (port 0: any free one), not {listen!r}: {reason}\n"


def test_serve_sim_errors_are_one_line(digits_model_file, tmp_path, capsys):
    taken = BoardServer("127.0.0.1", 0)
    pe, simd = explicit_folding(digits_model_file)
    common = ["serve-sim", "--model", digits_model_file, "--board", "icebreaker", "--pe", str(pe), "--simd", str(simd)]
    cases = [
        (["serve-sim", "--board", "nope", "--model", digits_model_file, "--listen", "127.0.0.1:0"],
         "unknown board 'nope'; known boards: icebreaker"),
        ([*common, "--listen", "127.0.0.1"], "--listen must be HOST:PORT"),
        ([*common, "--listen", "127.0.0.1:http"], "--listen must be HOST:PORT"),
        ([*common, "--listen", "127.0.0.1:70000"], "--listen must be HOST:PORT"),
        ([*common, "--listen", f"127.0.0.1:{taken.address[1]}"], f"cannot listen on 127.0.0.1:{taken.address[1]}"),
        ([*common, "--listen", "no.such.host.invalid:0"], "cannot listen on no.such.host.invalid:0"),
        (["serve-sim", "--board", "icebreaker", "--model", str(tmp_path / "nope.bnn"), "--listen", "127.0.0.1:0"],
         "no such model file"),
        (["serve-sim", "--board", "icebreaker", "--model", digits_model_file, "--pe", "8",
          "--listen", "127.0.0.1:0"], "give both --pe and --simd"),
        ([*common, "--baud", "100", "--listen", "127.0.0.1:0"], "--baud must lie in 9600.."),
    ]
    try:
        for argv, message in cases:
            assert main(argv) == 1, argv
            err = capsys.readouterr().err
            assert message in err and err.count("\n") == 1 and err.startswith("bnn serve-sim: error:"), err
    finally:
        taken.close()


# Runs `bnn serve-sim` with the stand-in core as hw.link.LinkCore, where sim.board builds it (the rest of
# hw.link stays: the host imports what a load writes from it).
_CLI = """
import sys
sys.path.insert(0, sys.argv[1])
import test_serve
import hw.link, sim.board
hw.link.LinkCore = sim.board.LinkCore = test_serve.StandInLinkCore
from bnn.cli import main
sys.exit(main(sys.argv[2:]))
"""


def _stdout_line(process, timeout):
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    assert ready, "no line on stdout in time"
    return process.stdout.readline()


@pytest.mark.parametrize("as_json, stop_signal", [(False, signal.SIGINT), (True, signal.SIGTERM)])
@pytest.mark.needs_cxx
def test_serve_sim_serves_until_stopped(digits_model_file, cache, as_json, stop_signal):
    # with --json, the folding is the board's fastest that fits
    pe, simd = explicit_folding(digits_model_file)
    folding = ["--json"] if as_json else ["--pe", str(pe), "--simd", str(simd)]
    argv = ["serve-sim", "--board", "icebreaker", "--model", digits_model_file, "--listen", "127.0.0.1:0",
            "--baud", "3000000", *folding]
    process = subprocess.Popen([sys.executable, "-c", _CLI, str(Path(__file__).parent), *argv],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "BNN_CACHE_DIR": str(cache)})
    try:
        line = _stdout_line(process, timeout=120)   # a first CXXRTL build, on a machine maybe busy
        if as_json:
            facts = json.loads(line)
            address = facts["listening"]
            assert facts["clock_hz"] == 30_000_000 and facts["uart_divisor"] == 10
            assert facts["quiet_cycles"] == 3 * 10 * 10
            fitting = fitting_folding(load_model(digits_model_file), board("icebreaker"), tree_stages=4)
            assert (facts["board"], facts["pe"], facts["simd"]) == ("icebreaker", *fitting)
        else:
            assert line.startswith("listening on 127.0.0.1:") and line.endswith("\n")
            address = line.split()[-1]
        with serial.serial_for_url(f"socket://{address}", timeout=2) as port:
            port.write(b"hello")
            assert port.read(5) == echoed(b"hello")
            host, _, number = address.rpartition(":")
            with socket.create_connection((host, int(number)), timeout=2) as second:
                assert second.recv(1) == b""          # closed at once: another client is served
        process.send_signal(stop_signal)
        out, err = process.communicate(timeout=5)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 128 + stop_signal, err     # 130 after SIGINT, 143 after SIGTERM
    assert out == ""
    assert "building the simulated board" in err and "Traceback" not in err
    if not as_json:
        assert f"engine P x S = {pe} x {simd}," in err
    summary = err.strip().splitlines()[-1]
    assert summary.startswith("bnn serve-sim: stopped: 1 client (1 more refused while one was served), 5 bytes "
                              "in, 5 bytes out"), summary
