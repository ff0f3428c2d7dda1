"""The one error type for bad input: a message that names the setting and the fix."""


class SetupError(Exception):
    """The run cannot start: a broken profile, catalog, option or missing binary."""
