"""Test support: the simulator fixture (clock, watchdog, VCD trace of a failing run)."""

import pytest
from amaranth.hdl import ClockDomain, Module
from amaranth.sim import Simulator

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
