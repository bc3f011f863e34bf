"""Test support: the simulator fixtures (clock, watchdog, VCD trace of a failing run) and a small
model file for the command-line tests."""

import sys

import pytest
from amaranth.hdl import ClockDomain, Module
from amaranth.sim import Simulator

from model.modelfile import save_model
from model.random_models import random_model

CLOCK_PERIOD = 1e-6


class WatchdogTimeout(AssertionError):
    """A simulation ran past its cycle budget (a hang, or a budget set too low)."""


def _build(dut, testbenches, background, cycles):
    top = Module()  # defines the clock domain, so that purely combinational units get a clock too
    top.domains.sync = ClockDomain()
    top.submodules.dut = dut
    sim = Simulator(top)
    sim.add_clock(CLOCK_PERIOD)
    for testbench in testbenches:
        sim.add_testbench(testbench)
    for testbench in background:
        sim.add_testbench(testbench, background=True)

    async def watchdog(ctx):
        await ctx.tick().repeat(cycles)
        raise WatchdogTimeout(f"simulation still running after {cycles} cycles")

    sim.add_testbench(watchdog, background=True)
    return sim


@pytest.fixture
def simulate(tmp_path):
    """Run ``dut`` with the given async testbenches, failing after ``cycles`` clock cycles.

    Call as ``simulate(dut, *testbenches, background=(), cycles=10_000)``. If the run fails, it
    is repeated with a VCD trace written to ``tmp_path / "failure.vcd"`` (the path is added to
    the exception's notes), then the failure is re-raised.
    """
    def run(dut, *testbenches, background=(), cycles=10_000):
        try:
            _build(dut, testbenches, background, cycles).run()
        except Exception as failure:
            vcd_path = tmp_path / "failure.vcd"
            sim = _build(dut, testbenches, background, cycles)
            try:
                with sim.write_vcd(str(vcd_path)):
                    sim.run()
            except Exception:
                pass  # the original failure is the one to report; the trace is what we wanted
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
