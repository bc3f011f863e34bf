"""The same training command writes the same model file whatever the machine's BLAS thread settings."""

import os
import subprocess
import sys

import pytest

from bnn.cli import BLAS_THREAD_VARIABLES


def _environment(threads):
    return dict(os.environ, **{name: str(threads) for name in BLAS_THREAD_VARIABLES})


def test_two_thread_settings_write_byte_identical_models(tmp_path):
    models = []
    for threads in (1, 2):
        out = tmp_path / f"threads-{threads}.bnn"
        subprocess.run([sys.executable, "-m", "bnn", "train", "--arch", "64-256-256-10", "--epochs", "2",
                        "--out", str(out)], env=_environment(threads), check=True, capture_output=True, timeout=300)
        models.append(out.read_bytes())
    assert models[0] == models[1]


def test_blas_runs_on_one_thread_whatever_the_environment_asks():
    """The mechanism behind the test above, visible even where two threads happen to sum alike."""
    pytest.importorskip("threadpoolctl")
    probe = ("import bnn.cli, threadpoolctl; bnn.cli.use_one_blas_thread(); import numpy; "
             "print(sorted({pool['num_threads'] for pool in threadpoolctl.threadpool_info() "
             "if pool['user_api'] == 'blas'}))")
    result = subprocess.run([sys.executable, "-c", probe], env=_environment(2), check=True, capture_output=True,
                            text=True, timeout=120)
    assert result.stdout.strip() == "[1]"
