"""rtcheck: check radiotherapy treatment plans against dose constraints.

The data flow is one-way (see ``docs/architecture.md``)::

    io -> model -> geometry -> dvh -> metrics -> protocol -> evaluate -> report -> cli/batch
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("rtcheck")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
