"""The one exception type the command line turns into a one-line error and exit code 2."""


class HarnessError(Exception):
    """Bad input or an impossible request: the message names the problem and the fix."""
