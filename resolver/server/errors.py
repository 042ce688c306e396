"""Errors the server reports to the operator as one line, without a traceback."""


class StartupError(Exception):
    """The server cannot start; the message is the one line shown to the operator."""


class WorkerFailed(Exception):
    """A worker could not start; the message is the worker's own one-line reason."""
