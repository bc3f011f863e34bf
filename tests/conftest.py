"""Test support: the simulator fixtures (clock, watchdog, a generator per testbench, VCD trace of a
failing run), the compile cache of the session, the ``needs_cxx`` marker, and a small model file for
the command-line tests."""

import functools
import inspect
import itertools
import sys
import zlib

# First: BLAS on one thread before NumPy loads (hypothesis and the imports below load NumPy), as
# `bnn` does, so that training in a test gives what `bnn train` gives, and fast.
from bnn.cli import use_one_blas_thread

use_one_blas_thread()
# Imported before any test runs: in a session without hypothesis tests its pytest plugin imports it
# late, while reporting, and pytest's assertion rewriting of it then fails, once Amaranth simulations
# have run, with "SystemError: AST constructor recursion depth mismatch" (seen on CPython 3.11.7).
import hypothesis  # noqa: F401
import numpy as np
import pytest
from amaranth.hdl import ClockDomain, Module
from amaranth.sim import Simulator

from model.modelfile import save_model
from model.random_models import random_model
from sim.cxxrtl_build import COMPILER_HINT, find_cxx_compiler

CLOCK_PERIOD = 1e-6
TESTBENCH_SEED = 1      # with the test's id, seeds the generator of each testbench that takes one
NO_CXX_COMPILER = f"no C++ compiler, which the CXXRTL back end needs: {COMPILER_HINT}"


def pytest_configure(config):
    config.addinivalue_line("markers", "needs_cxx: the test builds a CXXRTL simulation, so it needs a C++ "
                                       "compiler; skipped where there is none")


def pytest_collection_modifyitems(items):
    if find_cxx_compiler() is None:
        for item in items:
            if item.get_closest_marker("needs_cxx"):
                item.add_marker(pytest.mark.skip(reason=NO_CXX_COMPILER))


@pytest.fixture(scope="session", autouse=True)
def compile_cache(tmp_path_factory):
    """The CXXRTL compile cache of the session (``BNN_CACHE_DIR``, which the commands a test runs in a
    subprocess inherit): under pytest's temporary directory, not the user's ``~/.cache``, and shared
    by every test of the session, so that a design is built once per session."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("BNN_CACHE_DIR", str(tmp_path_factory.mktemp("cxxrtl-cache")))
        yield


class WatchdogTimeout(AssertionError):
    """A simulation ran past its cycle budget (a hang, or a budget set too low)."""


def _with_generator(testbench, seed):
    """``testbench``, given a new generator of ``seed`` as ``rng`` if it takes that argument."""
    if "rng" in inspect.signature(testbench).parameters:
        return functools.partial(testbench, rng=np.random.default_rng(seed))
    return testbench


def _build(dut, testbenches, background, cycles, seed):
    top = Module()  # defines the clock domain, so that purely combinational units get a clock too
    top.domains.sync = ClockDomain()
    top.submodules.dut = dut
    sim = Simulator(top)
    sim.add_clock(CLOCK_PERIOD)
    for index, testbench in enumerate([*testbenches, *background]):
        sim.add_testbench(_with_generator(testbench, [*seed, index]), background=index >= len(testbenches))

    async def watchdog(ctx):
        await ctx.tick().repeat(cycles)
        raise WatchdogTimeout(f"simulation still running after {cycles} cycles")

    sim.add_testbench(watchdog, background=True)
    return sim


@pytest.fixture
def simulate(request, tmp_path):
    """Run ``dut`` with the given async testbenches, failing after ``cycles`` clock cycles.

    Call as ``simulate(dut, *testbenches, background=(), cycles=10_000)``. A testbench that takes
    an ``rng`` argument (``async def producer(ctx, rng)``) gets a generator of its own, seeded with
    ``[TESTBENCH_SEED, crc32 of the test's id, n, i]`` for the ``n``-th call of the test and the
    ``i``-th testbench (those given, then the background ones): the same draws on every run. If the
    run fails, it is repeated, with new generators of the same seeds, so that it replays the
    failure, with a VCD trace written to ``tmp_path / "failure.vcd"``; the seed and the path are
    added to the exception's notes, then the failure is re-raised.
    """
    test_seed = zlib.crc32(request.node.nodeid.encode())
    calls = itertools.count()

    def run(dut, *testbenches, background=(), cycles=10_000):
        seed = [TESTBENCH_SEED, test_seed, next(calls)]
        try:
            _build(dut, testbenches, background, cycles, seed).run()
        except Exception as failure:
            vcd_path = tmp_path / "failure.vcd"
            sim = _build(dut, testbenches, background, cycles, seed)
            try:
                with sim.write_vcd(str(vcd_path)):
                    sim.run()
            except Exception:
                pass  # the original failure is the one to report; the trace is what we wanted
            failure.add_note(f"testbench i's rng: numpy.random.default_rng([{', '.join(map(str, seed))}, i])")
            failure.add_note(f"VCD trace of the failing run: {vcd_path}")
            raise
    return run


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test item, so that fixtures can see whether the test failed."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture
def engine_run(request, tmp_path):
    """:func:`sim.engine_run.run_engine`, repeated with a VCD trace for every run of a failing test.

    The traces go to ``tmp_path / "engine_run_<n>.vcd"``; their paths are printed in the test's
    teardown output.
    """
    from sim.engine_run import run_engine
    runs = []

    def run(*args, **kwargs):
        runs.append((args, kwargs))
        return run_engine(*args, **kwargs)

    yield run
    report = getattr(request.node, "report_call", None)
    if report is None or not report.failed:
        return
    for n, (args, kwargs) in enumerate(runs):
        vcd_path = tmp_path / f"engine_run_{n}.vcd"
        try:
            run_engine(*args, **{**kwargs, "vcd_path": str(vcd_path)})
        except Exception:
            pass  # the test's own failure is the one to report; the trace is what we wanted
        print(f"VCD trace of engine run {n}: {vcd_path}", file=sys.stderr)


@pytest.fixture
def digits_model(tmp_path):
    """A small random 8-bit model for the digits data set, and the path of its file."""
    model = random_model([64, 12, 10], input_bits=8, seed=6)
    model.metadata["dataset"] = "digits"
    path = tmp_path / "m.bnn"
    save_model(model, path)
    return model, str(path)


@pytest.fixture
def digits_model_file(digits_model):
    return digits_model[1]
