"""Errors raised for bad input; their message says what is wrong and what to pass instead."""


class InputError(ValueError):
    """Bad user input (file, plane index, alpha, model). The command line turns it into exit code 2."""
