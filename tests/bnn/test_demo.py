"""`bnn demo`: training, exact folding and the simulated engine, end to end on digits."""

import json

from bnn.cli import main


def test_demo_trains_folds_and_finds_no_mismatch(tmp_path, capsys):
    assert main(["demo", "--out-dir", str(tmp_path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    training = report["training"]
    assert training["mismatches"] == {"classes": 0, "activations": 0}
    assert training["accuracy"]["folded"] == training["accuracy"]["float"] >= 0.9
    assert (tmp_path / "digits.bnn").exists() and (tmp_path / "digits.png").exists()
    engine = report["engine"]
    assert engine["frames"] == training["counts"]["test"] and engine["mismatches"] == 0
    assert engine["cycles_per_frame"]["measured"] == engine["cycles_per_frame"]["analytic"]
    assert report["seconds"] > 0
