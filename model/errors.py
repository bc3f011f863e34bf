"""Typed errors of the model side. The CLI prints them as one line and exits non-zero."""


class BnnError(Exception):
    """Base class of every error a user can cause (bad file, bad argument, bad data)."""


class DatasetError(BnnError):
    """A data set is missing, malformed or unknown."""


class ModelFileError(BnnError):
    """A model file is missing, malformed, of an unsupported version, or inconsistent."""


class TrainingError(BnnError):
    """A training setting is invalid or does not fit the data set (architecture, rates, threshold)."""


class TeacherFileError(BnnError):
    """A saved teacher network is missing, malformed, or does not fit the data set."""


class SimulationTimeout(BnnError):
    """A simulated engine run did not produce every expected result within its cycle budget."""

    def __init__(self, results, frames, max_cycles):
        super().__init__(f"the engine gave {results} of {frames} results after {max_cycles} cycles, the "
                         f"run's cycle budget; heavy --input-gaps or --output-stalls can need more cycles "
                         f"than it allows: lower them")


class OutputFileError(BnnError):
    """An output file cannot be written: its location is a folder, not writable, or the write failed."""
