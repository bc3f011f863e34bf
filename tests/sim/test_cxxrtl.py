"""The CXXRTL back end's generic machinery, checked cycle for cycle against Amaranth's simulator.

The designs are two small stream components (PairSum in ``designs.py``, which the build tests'
subprocesses import too, and one defined here); the engine's own agreement tests live
in ``test_cxxrtl_engine.py``.
"""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from amaranth import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from sim import cxxrtl_build
from sim.cxxrtl import StreamSimulator
from sim.cxxrtl_build import CxxrtlError, build_library, convert_stream_design
from tests.sim.designs import PairSum


class Passthrough(wiring.Component):
    """Input to output stream through wires: ready and valid pass straight through, and the payload
    is XORed with the number of transfers so far (mod 256).
    """

    i: In(stream.Signature(8))
    o: Out(stream.Signature(8))

    def elaborate(self, platform):
        m = Module()
        transfers = Signal(8)
        m.d.comb += [
            self.o.valid.eq(self.i.valid),
            self.i.ready.eq(self.o.ready),
            self.o.payload.eq(self.i.payload ^ transfers),
        ]
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += transfers.eq(transfers + 1)
        return m


def amaranth_transfers(component, tokens, in_valid, out_ready, cycles):
    """Transfers of the first ``cycles`` cycles in Amaranth's simulator.

    Returns the cycles of the input transfers and the output transfers as ``[(cycle, payload)]``.

    Same protocol as the CXXRTL driver (see :mod:`sim.cxxrtl`): patterns repeat; the producer
    offers the next token on a cycle whose ``in_valid`` entry is true and holds it until taken;
    cycle ``n`` is the ``n``-th ``tick()``.
    """
    inputs, records = [], []

    async def producer(ctx):
        cycle = 0
        for token in tokens:
            while not in_valid[cycle % len(in_valid)]:
                await ctx.tick()
                cycle += 1
            ctx.set(component.i.payload, int(token))
            ctx.set(component.i.valid, 1)
            taken = False
            while not taken:
                _, _, taken = await ctx.tick().sample(component.i.ready)
                cycle += 1
            inputs.append(cycle - 1)
            ctx.set(component.i.valid, 0)

    async def consumer(ctx):
        for cycle in range(cycles):
            ready = int(out_ready[cycle % len(out_ready)])
            ctx.set(component.o.ready, ready)
            _, _, valid, payload = await ctx.tick().sample(component.o.valid, component.o.payload)
            if valid and ready:
                records.append((cycle, payload))

    sim = Simulator(component)
    sim.add_clock(1e-6)
    sim.add_testbench(producer, background=True)
    sim.add_testbench(consumer)
    sim.run()
    return inputs, records


def cxxrtl_transfers(simulator, tokens, in_valid, out_ready, cycles, splits):
    """The same transfers from the CXXRTL model, run in batches that end at the cycles in ``splits``."""
    inputs, records = [], []
    consumed = 0
    simulator.set_patterns(in_valid, out_ready)
    for start, stop in zip([0, *splits], [*splits, cycles]):
        batch = simulator.run(tokens[consumed:], max_cycles=stop - start)
        assert batch.cycles == stop - start
        assert batch.in_cycles.tolist() == sorted(batch.in_cycles.tolist())
        consumed += batch.consumed
        inputs += batch.in_cycles.tolist()
        records += list(zip(batch.out_cycles.tolist(), [int(p) for p in batch.out_payloads]))
    assert simulator.cycle == cycles
    return inputs, records


def random_pattern(rng, length, density):
    return (rng.random(length) < density).astype(np.uint8)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cxxrtl-cache")


def pair_sum(width, seed):
    rng = np.random.default_rng(seed)
    return PairSum(width, rng.integers(1, 1 << min(width, 62), 12))


@pytest.mark.parametrize("width", [8, 40, 70])
@pytest.mark.parametrize("in_density,out_density", [(1.0, 1.0), (0.6, 0.5), (0.2, 0.9), (0.9, 0.15)])
@pytest.mark.needs_cxx
def test_agrees_with_amaranth_cycle_for_cycle(cache, width, in_density, out_density):
    rng = np.random.default_rng([width, int(in_density * 10), int(out_density * 10)])
    cycles = 400
    tokens = [int.from_bytes(rng.bytes(16), "little") % (1 << width) for _ in range(300)]
    tokens[:2] = [(1 << width) - 1, (1 << width) - 2]
    in_valid = random_pattern(rng, 97, in_density)
    out_ready = random_pattern(rng, 61, out_density)
    splits = sorted(rng.choice(np.arange(1, cycles), 5, replace=False).tolist())
    expected = amaranth_transfers(pair_sum(width, 1), tokens, in_valid, out_ready, cycles)
    model = build_library(convert_stream_design(pair_sum(width, 1)), cache=cache)
    with StreamSimulator(model) as simulator:
        got = cxxrtl_transfers(simulator, tokens, in_valid, out_ready, cycles, splits)
    assert len(expected[1]) > 10
    assert got == expected


@pytest.mark.parametrize("vcd", [False, True])
@pytest.mark.needs_cxx
def test_combinational_path_agrees(cache, vcd):
    """Ready and valid that depend combinationally on the other side's inputs, on the same cycle.

    The waveform build settles the logic twice per cycle (the path designs with feedback wires
    take); both paths must agree with Amaranth.
    """
    rng = np.random.default_rng(3)
    cycles = 300
    tokens = rng.integers(0, 256, 200)
    in_valid, out_ready = random_pattern(rng, 113, 0.7), random_pattern(rng, 29, 0.6)
    expected = amaranth_transfers(Passthrough(), tokens, in_valid, out_ready, cycles)
    model = build_library(convert_stream_design(Passthrough()), vcd=vcd, cache=cache)
    with StreamSimulator(model) as simulator:
        got = cxxrtl_transfers(simulator, tokens, in_valid, out_ready, cycles, [1, 7, 150])
    assert got == expected
    assert len(got[1]) > 50


@pytest.mark.needs_cxx
def test_stops_at_token_and_output_counts(cache):
    model = build_library(convert_stream_design(pair_sum(8, 2)), cache=cache)
    tokens = np.arange(20, dtype=np.uint8)
    with StreamSimulator(model) as simulator:
        first = simulator.run(tokens, max_cycles=1000, stop_consumed=7)
        assert first.consumed == 7 and simulator.cycle == first.cycles
        second = simulator.run(tokens[7:], max_cycles=1000, max_outputs=2)
        assert len(second.out_cycles) == 2
        rest = simulator.run(tokens[7 + second.consumed:], max_cycles=1000)
    assert first.consumed + second.consumed + rest.consumed == 20
    assert len(first.out_cycles) + len(second.out_cycles) + len(rest.out_cycles) == 10
    assert rest.cycles == 1000


@pytest.mark.needs_cxx
def test_second_compile_reuses_and_changed_design_rebuilds(tmp_path):
    first = build_library(convert_stream_design(pair_sum(8, 4)), cache=tmp_path)
    again = build_library(convert_stream_design(pair_sum(8, 4)), cache=tmp_path)
    changed = build_library(convert_stream_design(pair_sum(8, 5)), cache=tmp_path)
    assert first.built and not again.built and changed.built
    assert again.library == first.library != changed.library
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([first.library.parent.name,
                                                                 changed.library.parent.name])


def test_missing_compiler_names_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setenv("CXX", "no-such-compiler-bnn")
    assert cxxrtl_build.find_cxx_compiler() is None
    with pytest.raises(CxxrtlError, match=r"no C\+\+ compiler found.*apt-get install g\+\+"):
        build_library(convert_stream_design(Passthrough()), cache=tmp_path)


def test_failed_compile_is_one_error_pointing_to_the_log(monkeypatch, tmp_path):
    monkeypatch.setenv("CXX", "false")
    with pytest.raises(CxxrtlError, match=r"compiling the CXXRTL model with \S*false failed \(exit 1\)") as error:
        build_library(convert_stream_design(Passthrough()), cache=tmp_path)
    log = str(error.value).rsplit("full log in ", 1)[1]
    assert "write_cxxrtl" in open(log).read()


@pytest.mark.needs_cxx
def test_vcd_covers_the_recorded_cycles(cache, tmp_path):
    model = build_library(convert_stream_design(pair_sum(8, 6)), vcd=True, cache=cache)
    path = tmp_path / "wave.vcd"
    with StreamSimulator(model) as simulator:
        simulator.open_vcd(path)
        simulator.run(np.arange(10, dtype=np.uint8), max_cycles=5)
        simulator.record_vcd(True)
        simulator.run(np.arange(5, 10, dtype=np.uint8), max_cycles=4)
        simulator.record_vcd(False)
        simulator.run([], max_cycles=5)
    text = path.read_text()
    times = [int(line[1:]) for line in text.splitlines() if line.startswith("#")]
    assert times == list(range(10, 18))
    assert "o__payload" in text and "have_first" in text


@pytest.mark.needs_cxx
def test_vcd_needs_a_vcd_build(cache, tmp_path):
    with StreamSimulator(build_library(convert_stream_design(Passthrough()), cache=cache)) as simulator:
        with pytest.raises(CxxrtlError, match="without waveform support"):
            simulator.open_vcd(tmp_path / "wave.vcd")


@pytest.mark.needs_cxx
def test_token_wider_than_payload_is_refused(cache):
    with StreamSimulator(build_library(convert_stream_design(Passthrough()), cache=cache)) as simulator:
        with pytest.raises(ValueError, match=r"\[0, 2\*\*8\)"):
            simulator.run(np.array([256]), max_cycles=1)


class WithPins(wiring.Component):
    """Passthrough with an extra output (allowed) and, optionally, an extra input (refused)."""

    def __init__(self, *, extra_input):
        members = {"i": In(stream.Signature(8)), "o": Out(stream.Signature(8)), "led": Out(1)}
        if extra_input:
            members["button"] = In(1)
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        m.submodules.inner = inner = Passthrough()
        wiring.connect(m, wiring.flipped(self.i), inner.i)
        wiring.connect(m, inner.o, wiring.flipped(self.o))
        m.d.sync += self.led.eq(self.o.valid)
        return m


def test_extra_outputs_are_allowed_extra_inputs_refused():
    assert convert_stream_design(WithPins(extra_input=False)).output_width == 8
    with pytest.raises(CxxrtlError, match=r"inputs the stream driver does not drive: \['button'\]"):
        convert_stream_design(WithPins(extra_input=True))


def test_design_without_the_named_stream_is_refused():
    with pytest.raises(CxxrtlError, match="no input port 'data__payload'"):
        convert_stream_design(Passthrough(), input_port="data")


@pytest.mark.needs_cxx
def test_two_processes_needing_the_same_design_build_it_once(tmp_path):
    # a second `bnn sim` with a cold cache waits for the first one's build instead of repeating it
    script = ("import sys; sys.path.insert(0, '.'); from tests.sim.designs import PairSum; "
              "from sim.cxxrtl_build import build_library, convert_stream_design; "
              "design = convert_stream_design(PairSum(8, list(range(12)))); "
              f"print(build_library(design, cache={str(tmp_path)!r}).built)")
    processes = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
                 for _ in range(2)]
    built = sorted(p.communicate(timeout=300)[0].strip() for p in processes)
    assert built == ["False", "True"]
    assert len([path for path in tmp_path.iterdir() if not path.name.startswith(".")]) == 1


def _build_in_background(cache):
    """A process (in a session of its own) building PairSum(8, 0..11) into ``cache``, once its
    build folder exists."""
    script = ("import sys; sys.path.insert(0, '.'); from tests.sim.designs import PairSum; "
              "from sim.cxxrtl_build import build_library, convert_stream_design; "
              f"build_library(convert_stream_design(PairSum(8, list(range(12)))), cache={str(cache)!r})")
    process = subprocess.Popen([sys.executable, "-c", script], start_new_session=True)
    deadline = time.monotonic() + 60
    while not list(cache.glob(".build-*")):
        assert process.poll() is None and time.monotonic() < deadline, "the build never started"
        time.sleep(0.05)
    return process


@pytest.mark.needs_cxx
def test_a_build_folder_left_by_a_killed_process_goes_with_the_next_build(tmp_path):
    design = convert_stream_design(PairSum(8, list(range(12))))
    process = _build_in_background(tmp_path)
    os.killpg(process.pid, signal.SIGKILL)   # it and its build steps, with no cleanup
    process.wait()
    assert list(tmp_path.glob(".build-*"))
    again = build_library(design, cache=tmp_path)
    assert again.built
    assert [path.name for path in tmp_path.iterdir()] == [again.library.parent.name]


@pytest.mark.needs_cxx
def test_only_a_real_build_is_announced(tmp_path, caplog):
    design = convert_stream_design(pair_sum(8, 7))
    with caplog.at_level("INFO", logger="bnn"):
        build_library(design, cache=tmp_path)
        assert "compiling the simulation model to C++ with CXXRTL" in caplog.text
        caplog.clear()
        build_library(design, cache=tmp_path)
    assert caplog.text == ""


@pytest.mark.needs_cxx
def test_waiting_for_another_process_is_announced(tmp_path, caplog):
    design = convert_stream_design(PairSum(8, list(range(12))))
    process = _build_in_background(tmp_path)
    try:
        with caplog.at_level("INFO", logger="bnn"):
            library = build_library(design, cache=tmp_path)
    finally:
        process.wait(timeout=300)
    assert not library.built
    assert caplog.messages == ["waiting for another process compiling the same simulation model"]


def test_an_interrupted_build_step_ends_with_its_children(tmp_path):
    # a compiler driver's work is done by its children (g++ runs cc1plus): a step interrupted (bnn
    # killed while it compiles) must not leave them running
    script = "sleep 60 & echo $! > child; wait"

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, 0.5)
    try:
        with pytest.raises(KeyboardInterrupt):
            cxxrtl_build._run_step(["sh", "-c", script], tmp_path, "a step")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    child = int((tmp_path / "child").read_text())
    deadline = time.monotonic() + 5
    while _running(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _running(child)


def _running(pid):
    """Whether the process ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return False
