"""The test support of tests/conftest.py: a generator per testbench that a failure's rerun replays,
the session's compile cache, and the ``needs_cxx`` marker."""

import os
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from amaranth.hdl import Module

from sim.cxxrtl_build import cache_dir
from tests.conftest import NO_CXX_COMPILER, TESTBENCH_SEED


def test_each_testbench_has_its_own_generator_and_the_trace_run_replays_it(simulate, request, tmp_path):
    draws = []

    async def first(ctx, rng):
        draws.append(rng.integers(1 << 30, size=4).tolist())
        await ctx.tick()

    async def second(ctx, rng):
        draws.append(rng.integers(1 << 30, size=4).tolist())
        await ctx.tick()
        raise AssertionError("on purpose")

    with pytest.raises(AssertionError, match="on purpose") as failure:
        simulate(Module(), first, background=[second])
    seed = [TESTBENCH_SEED, zlib.crc32(request.node.nodeid.encode()), 0]
    expected = [np.random.default_rng([*seed, i]).integers(1 << 30, size=4).tolist() for i in (0, 1)]
    assert draws == expected + expected             # the failing run, then the run that writes the trace
    assert f"numpy.random.default_rng([{', '.join(map(str, seed))}, i])" in failure.value.__notes__[0]
    assert (tmp_path / "failure.vcd").exists()


def test_builds_go_to_a_cache_of_the_session(tmp_path_factory):
    assert Path(cache_dir()).is_relative_to(tmp_path_factory.getbasetemp())


def test_tests_that_need_a_compiler_skip_without_one():
    tests = ["tests/sim/test_cxxrtl.py::test_stops_at_token_and_output_counts",     # marked needs_cxx
             "tests/sim/test_cxxrtl.py::test_missing_compiler_names_what_to_install"]
    result = subprocess.run([sys.executable, "-m", "pytest", "-rs", "-p", "no:cacheprovider", *tests],
                            capture_output=True, text=True, env={**os.environ, "CXX": "/no/such/compiler"},
                            cwd=Path(__file__).parents[1])
    assert "1 passed, 1 skipped" in result.stdout and NO_CXX_COMPILER in result.stdout, result.stdout
