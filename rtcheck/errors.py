"""Exception hierarchy and :class:`Finding`, a tolerated problem a report must disclose.

Every error raised for bad input is an :class:`RtcheckError`. Its ``str()`` is one line
naming the file (when known) and the problem, which is what the CLI prints before exiting
with code 2. Nothing else should reach the user as a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class RtcheckError(Exception):
    """Base class of every error rtcheck raises on purpose.

    Parameters
    ----------
    message
        What is wrong and, where possible, how to get past it.
    path
        The file or folder the problem is in, if any.
    """

    def __init__(self, message: str, path: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.path = None if path is None else str(path)

    def __str__(self) -> str:
        text = " ".join(self.message.split())
        return f"{self.path}: {text}" if self.path else text


class InputError(RtcheckError):
    """A file or folder cannot be read as the DICOM object it should be."""


class UnsupportedError(InputError):
    """Valid input that rtcheck refuses on purpose (e.g. oblique dose grids)."""


class LinkError(InputError):
    """Files cannot be linked into a consistent case (UIDs, frames of reference)."""


class GeometryError(RtcheckError):
    """Geometry is inconsistent or outside what the engine supports."""


class ProtocolError(RtcheckError):
    """A protocol file is invalid; the message names the file and the key."""


class MetricSyntaxError(ProtocolError):
    """A DVH metric expression does not follow the TG-263 grammar."""


class ConfigError(RtcheckError):
    """A command-line option or user mapping file is invalid."""


class Severity(StrEnum):
    """How much a finding matters to the verdict."""

    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


@dataclass(frozen=True)
class Finding:
    """A problem that was tolerated but must be shown in every report.

    Attributes
    ----------
    code
        Stable dotted identifier, e.g. ``"dose.partial_coverage"``.
    message
        One human sentence.
    severity
        :class:`Severity`.
    source
        File the finding is about, if any.
    subject
        Structure, plan or constraint the finding is about, if any.
    """

    code: str
    message: str
    severity: Severity = Severity.WARNING
    source: str | None = None
    subject: str | None = None

    def to_dict(self) -> dict[str, str | None]:
        """JSON-ready form."""
        return {
            "code": self.code,
            "severity": self.severity.value,
            "message": self.message,
            "source": self.source,
            "subject": self.subject,
        }
