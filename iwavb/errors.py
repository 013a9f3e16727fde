"""The root of the project's own errors: an expected failure whose message is meant for the user.

The CLI and the app show such a message as it is (no traceback); anything else is a bug.
"""


class IWAVBError(Exception):
    """An expected failure (bad file, missing data, bad setting); the message says what and where."""
