"""`bnn demo`: training, exact folding, the simulated engine and a streamed run over a simulated board."""

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
    link = report["link"]
    assert link["frames"] == engine["frames"] and link["mismatches"] == 0 and link["failed"] == 0
    assert link["accuracy"] == training["accuracy"]["folded"]   # what bnn eval reports
    assert link["board_frames_per_second"] <= link["link_bound_frames_per_second"]
