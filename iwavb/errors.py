"""The root of the project's own errors: an expected failure whose message is meant for the user.

The CLI and the app show such a message as it is (no traceback); anything else is a bug.
"""


class IWAVBError(Exception):
    """An expected failure (bad file, missing data, bad setting); the message says what and where."""


class SettingError(IWAVBError, ValueError):
    """A setting that does not make a run. `name` is the setting (a config field), so that the CLI can name
    its option (`--lr`) and the app its widget; the message says what is wrong with it."""

    def __init__(self, name: str, message: str):
        super().__init__(message)
        self.name = name

    def __reduce__(self):  # picklable, like the built-in errors (two arguments, not one message)
        return type(self), (self.name, str(self))


class ResourceError(IWAVBError):
    """A run that would not fit this machine (memory, threads); the message gives the estimate and the limit."""
