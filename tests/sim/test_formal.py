"""The formal proofs (sim.proofs, run by SymbiYosys): the quick ones hold, and each known defect brought
back into a component fails the property that guards against it."""

import dataclasses

import pytest

import sim.formal
from bench import results
from model.errors import BnnError
from sim.formal import Proof, failed_sources, run_proof
from sim.proofs import MUTANTS, PROOFS


@pytest.mark.parametrize("proof", [p for p in PROOFS if p.quick], ids=lambda p: p.name)
def test_the_property_holds(proof, tmp_path):
    result = run_proof(proof, tmp_path)
    assert result.status == "PASS", f"{proof.name}: {result.status}, failed: {failed_sources(result)} ({result.log})"


@pytest.mark.parametrize("mutant", MUTANTS, ids=lambda m: m.name)
def test_a_known_defect_fails_its_property(mutant, tmp_path):
    result = run_proof(mutant.proof, tmp_path)
    assert result.status == ("UNKNOWN" if mutant.proof.mode == "prove" else "FAIL"), result
    assert any(mutant.fails in line for line in failed_sources(result)), failed_sources(result)


def test_an_unreached_cover_fails(tmp_path):
    # a cover proof of the watchdog too short for it to expire
    watchdog = next(p for p in PROOFS if p.name == "watchdog")
    result = run_proof(dataclasses.replace(watchdog, name="short_cover", mode="cover", depth=3), tmp_path)
    assert result.status == "FAIL" and result.failed


def test_a_proof_s_mode_and_depth_are_checked():
    with pytest.raises(ValueError, match="mode must be one of prove, bmc, cover, not 'proof'"):
        Proof("p", "c", "s", None, "proof", 3)
    with pytest.raises(ValueError, match="depth must be a positive integer, not 0"):
        Proof("p", "c", "s", None, "bmc", 0)


def test_a_missing_tool_is_named(monkeypatch):
    monkeypatch.setattr(sim.formal.shutil, "which", lambda tool, path=None: None if tool == "z3" else "/bin/" + tool)
    with pytest.raises(BnnError, match="formal proofs need `z3` .*z3-solver"):
        sim.formal.tool_environment()


def test_the_recorded_bench_runs_today_s_proofs_and_defects():
    recorded = results.read("formal")
    assert [(r["name"], r["mode"], r["depth"], r["statement"]) for r in recorded["proofs"]] == [
        (p.name, p.mode, p.depth, p.statement) for p in PROOFS], "bench/out/formal.json is stale: run bench/formal.py"
    assert [(r["name"], r["proof"], r["failed"]) for r in recorded["mutants"]] == [
        (m.name, m.proof.name, [m.fails]) for m in MUTANTS], "bench/out/formal.json is stale: run bench/formal.py"
    assert {r["status"] for r in recorded["proofs"]} == {"PASS"}
