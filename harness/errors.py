"""The one exception a user sees as a single line (the CLI prints it and exits non-zero)."""


class UserError(Exception):
    """Bad input or an unmet precondition, explained in one line."""
