"""DVH engine: numba kernels behind a validating Python API."""

from rtcheck.dvh.dvh import DVH

__all__ = ["DVH"]
