"""Run images through the simulated engine and compare every result with the golden model."""

import logging
from dataclasses import dataclass

import numpy as np

from layout.compiler import compile_model
from model.fileio import write_atomically
from model.golden import infer

from .amaranth_backend import run_amaranth
from .cxxrtl_build import COMPILER_HINT, find_cxx_compiler, missing_compiler
from .stimulus import decode_result, make_run_spec

# Frames/s are quoted at this clock: the iCEBreaker's 12 MHz oscillator. Nominal until a place and
# route closes timing at it.
DEFAULT_CLOCK_MHZ = 12.0

log = logging.getLogger("bnn")


def default_backend_name():
    """``"cxxrtl"`` (fast) when a C++ compiler is found, else ``"amaranth"``; the fallback is
    logged on the ``bnn`` logger, with why and how to get the fast back end."""
    if find_cxx_compiler():
        return "cxxrtl"
    log.warning(f"{missing_compiler()}: simulating with Amaranth's simulator, about 1,000x slower; "
                f"for the fast cxxrtl back end, {COMPILER_HINT}")
    return "amaranth"


def backend_runner(name):
    """The run function of back end ``name`` (``"cxxrtl"`` or ``"amaranth"``), for :func:`run_engine`."""
    from .cxxrtl_backend import run_cxxrtl
    return {"cxxrtl": run_cxxrtl, "amaranth": run_amaranth}[name]


@dataclass
class EngineRun:
    """Outcome of :func:`run_engine` on ``B`` frames.

    ``classes`` ``(B,)`` and ``scores`` ``(B, classes)`` are what the engine produced;
    ``mismatched_frames`` lists the frames whose class or any score differs from the golden
    model. ``intervals`` are the cycles between consecutive results (the measured cycles per
    frame once the pipeline is full); ``latency`` is the first frame's cycles from its last
    input transfer to its result.
    """

    compiled: object
    classes: np.ndarray
    scores: np.ndarray
    mismatched_frames: list
    intervals: list
    latency: int
    cycles: int
    seconds: float

    @property
    def mismatches(self):
        return len(self.mismatched_frames)

    @property
    def measured_cycles_per_frame(self):
        """The median interval between results (the lower one of an even count; None for a single
        frame). Without stalls every interval is the same; with them the median is the typical one."""
        return sorted(self.intervals)[(len(self.intervals) - 1) // 2] if self.intervals else None

    @property
    def cycles_per_second(self):
        """Simulated clock cycles per second of wall time."""
        return self.cycles / self.seconds if self.seconds > 0 else None

    def figures(self, clock_mhz):
        """The run as a JSON-ready dict; frames/s at ``clock_mhz`` use the measured interval
        (the analytic one for a single frame)."""
        compiled = self.compiled
        per_frame = self.measured_cycles_per_frame or compiled.cycles_per_frame
        return {
            "frames": int(len(self.classes)),
            "mismatches": self.mismatches,
            "mismatched_frames": self.mismatched_frames[:20],
            "pe": compiled.params.pe,
            "simd": compiled.params.simd,
            "tree_stages": compiled.params.tree_stages,
            "pixels_per_beat": compiled.params.pixels_per_beat,
            "cycles_per_frame": {"measured": self.measured_cycles_per_frame,
                                 "analytic": compiled.cycles_per_frame,
                                 "ideal": compiled.ideal_cycles},
            "utilisation": compiled.ideal_cycles / per_frame,
            "latency": {"measured": self.latency, "analytic": compiled.latency},
            "clock_mhz": clock_mhz,
            "frames_per_second": clock_mhz * 1e6 / per_frame,
            "simulated_cycles": self.cycles,
            "simulator_cycles_per_second": self.cycles_per_second,
            "seconds": self.seconds,
        }


def mismatched_frames(golden, classes, scores):
    """Indices of the frames whose class or any score differs from ``golden`` (an Inference)."""
    differs = (np.asarray(classes) != golden.classes) | np.any(np.asarray(scores) != golden.scores, axis=1)
    return [int(i) for i in np.flatnonzero(differs)]


def _simulate(backend, compiled, spec, vcd_path, on_result):
    """Run ``spec`` on ``backend``. A VCD trace is written under a temporary name in the folder
    of ``vcd_path`` (the simulator opens it by name) and renamed to ``vcd_path`` once the run is
    complete; a failed run removes it."""
    if vcd_path is None:
        return backend(compiled, spec, vcd_path=None, on_result=on_result)
    records = []
    write_atomically(vcd_path, lambda partial: records.append(
        backend(compiled, spec, vcd_path=partial.name, on_result=on_result)))
    return records[0]


def run_engine(model, images, *, pe, simd, tree_stages=0, pixels_per_beat=None, capacity=None, seed=0,
               input_gaps=0.0, output_stalls=0.0, vcd_path=None, progress=None, backend=run_amaranth):
    """Compile ``model``, simulate ``images`` (``(B, input_size)`` uint8) cycle by cycle, compare.

    ``pe``, ``simd``, ``tree_stages``, ``pixels_per_beat`` and ``capacity`` are passed to
    :func:`layout.compiler.compile_model`; ``seed``, ``input_gaps`` and ``output_stalls`` to
    :func:`sim.stimulus.make_run_spec`.
    ``vcd_path`` gets a VCD trace of the run, complete or not at all (see :func:`_simulate`).
    ``progress`` is an optional callable invoked after every result. ``backend`` runs the
    simulation: :func:`sim.amaranth_backend.run_amaranth`, :func:`sim.cxxrtl_backend.run_cxxrtl`
    or any callable with their signature. Raises
    :class:`layout.compiler.CompileError` if the configuration is invalid or the model does not fit.
    """
    images = np.asarray(images, dtype=np.uint8)
    compiled = compile_model(model, pe=pe, simd=simd, tree_stages=tree_stages,
                             pixels_per_beat=pixels_per_beat, capacity=capacity)
    spec = make_run_spec(compiled, images, seed=seed, input_gaps=input_gaps, output_stalls=output_stalls)
    record = _simulate(backend, compiled, spec, vcd_path, progress or (lambda: None))

    decoded = [decode_result(payload, compiled.params) for _, payload in record.outputs]
    classes = np.array([cls for cls, _ in decoded], dtype=np.int64)
    scores = np.array([s[:model.classes] for _, s in decoded], dtype=np.int64).reshape(len(images), model.classes)
    mismatched = mismatched_frames(infer(model, images), classes, scores)
    cycles = [cycle for cycle, _ in record.outputs]
    last_beat_of_first_frame = record.input_cycles[compiled.beats_per_frame - 1]
    return EngineRun(compiled, classes, scores, mismatched, list(np.diff(cycles).tolist()),
                     cycles[0] - last_beat_of_first_frame, cycles[-1] + 1, record.seconds)
