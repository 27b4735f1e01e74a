"""Errors a user can cause or fix.

The CLI prints any :class:`MnistbenchError` as one line and exits with code 2;
every other exception is a bug in mnistbench or a plugin and keeps its traceback.
"""


class MnistbenchError(Exception):
    """Base class: the message is written for the user and names what to fix."""


class DataError(MnistbenchError):
    """MNIST could not be found, fetched or validated."""


class PluginError(MnistbenchError):
    """A plugin failed to load or misbehaved in a hook."""


class ConfigError(MnistbenchError):
    """An option or combination of options cannot be run."""


class ResultsWriteError(MnistbenchError, OSError):
    """A file could not be written (full disk, permissions).

    Also an OSError, so code that handles write failures keeps handling it.
    """
