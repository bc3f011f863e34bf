"""SIGTERM ends a command cleanly (issue 9): one line, exit status 143, and the cleanup of whatever
was running, so that a build killed half-way leaves nothing in the compile cache."""

import os
import signal
import subprocess
import sys
import time

import pytest


@pytest.mark.needs_cxx
def test_sigterm_during_a_build_exits_143_and_leaves_no_build_folder(digits_model_file, tmp_path):
    cache = tmp_path / "cache"
    process = subprocess.Popen([sys.executable, "-m", "bnn", "sim", "--model", digits_model_file, "--count", "1",
                                "--pe", "2", "--simd", "8", "--backend", "cxxrtl"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "BNN_CACHE_DIR": str(cache)})
    try:
        deadline = time.monotonic() + 60
        while not list(cache.glob(".build-*")):
            assert process.poll() is None and time.monotonic() < deadline, "the build never started"
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 143
    assert out == "" and "Traceback" not in err
    assert err.splitlines()[-1] == "bnn sim: terminated"
    assert not list(cache.glob(".build-*")) and not [path for path in cache.iterdir() if path.is_dir()]
