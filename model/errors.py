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
