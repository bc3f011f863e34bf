"""`bnn sim`: the report, the JSON, the VCD and the one-line errors."""

import json

import numpy as np
import pytest

from bnn.cli import main
from model.datasets import load_dataset
from model.golden import infer


def test_sim_json_reports_exact_results_and_cycles(digits_model, capsys):
    model, path = digits_model
    assert main(["sim", "--model", path, "--count", "3", "--pe", "4", "--simd", "16", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    data = load_dataset("digits")
    expected = np.mean(infer(model, data.test_images[:3]).classes == data.test_labels[:3])
    assert report["mismatches"] == 0 and report["frames"] == 3 and report["accuracy"] == expected
    cycles = report["cycles_per_frame"]
    assert cycles["measured"] == cycles["analytic"] == cycles["ideal"] + 2 * 3  # 2 layers x (3 + 0 stages)
    assert report["latency"]["measured"] == report["latency"]["analytic"]


def test_sim_summary_and_vcd(digits_model, tmp_path, capsys):
    _, path = digits_model
    vcd = tmp_path / "run.vcd"
    assert main(["sim", "--model", path, "--count", "1", "--pe", "2", "--simd", "8", "--vcd", str(vcd),
                 "--input-gaps", "0.5", "--output-stalls", "0.5"]) == 0
    out = capsys.readouterr().out
    assert "0 mismatches" in out and "cycles per frame" in out
    assert vcd.stat().st_size > 0


@pytest.mark.parametrize("argv, message", [
    (["--pe", "3", "--simd", "8"], "simd (8) must be a multiple of pe (3)"),
    (["--pe", "2", "--simd", "8", "--pixels-per-beat", "3"], "pixels_per_beat (3) must divide simd (8)"),
])
def test_sim_errors_are_one_line(digits_model, capsys, argv, message):
    _, path = digits_model
    assert main(["sim", "--model", path, "--count", "1"] + argv) == 1
    err = capsys.readouterr().err
    assert message in err and err.startswith("bnn sim: error:") and err.count("\n") == 1


def test_sim_rejects_a_missing_model(tmp_path, capsys):
    assert main(["sim", "--model", str(tmp_path / "nope.bnn")]) == 1
    assert "no such model file" in capsys.readouterr().err


def test_sim_refuses_a_model_bigger_than_the_engine(digits_model, capsys):
    _, path = digits_model
    argv = ["sim", "--model", path, "--count", "1", "--pe", "4", "--simd", "16", "--memory", "weight_depth=10"]
    assert main(argv) == 1
    assert "the model needs 15 weight words but the engine has 10" in capsys.readouterr().err


def test_sim_chooses_p_and_s_for_a_cycle_target(digits_model, capsys):
    _, path = digits_model
    assert main(["sim", "--model", path, "--count", "2", "--max-cycles", "40", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["cycles_per_frame"]["analytic"] <= 40 and report["mismatches"] == 0
    assert main(["sim", "--model", path, "--max-cycles", "40", "--pe", "4"]) == 1
    assert "give either --max-cycles or --pe/--simd" in capsys.readouterr().err
