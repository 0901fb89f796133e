"""Errors that ftlab shows to a person: one line that names the problem and what to do."""

__all__ = ["FtlabError", "ParameterError", "PersonalDataWarning"]


class FtlabError(Exception):
    """A problem with the user's input or environment, shown as one line, never a traceback wall."""

    def _render_traceback_(self) -> list[str]:  # IPython shows this instead of the full traceback
        return [f"{type(self).__name__}: {self}"]


class ParameterError(FtlabError, ValueError):
    """A notebook or CLI parameter has a bad value. The message names the parameter and the valid values."""


class PersonalDataWarning(UserWarning):
    """A file about to leave the machine (an upload) holds what looks like personal data."""
