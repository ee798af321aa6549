"""Errors shared across layers. The CLI maps UsageError (bad usage, bad config) to exit code 2."""


class UsageError(ValueError):
    """Bad usage or bad configuration; the message names the key, argument or file at fault."""
