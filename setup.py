"""Packaging hook (all metadata is in ``pyproject.toml``).

The shipped protocols live in the top-level ``constraints/`` folder (the design keeps them
there, next to the package, for review). A wheel cannot hold a top-level data folder, so it is
mapped into the package as ``rtcheck/_constraints``; :func:`rtcheck.protocol.builtin_protocol_dir`
looks in the source checkout's ``constraints/`` first, then there (``docs/protocols.md``).
``pyproject.toml`` cannot both discover the packages and add a mapped one, hence this file;
the package data (also of ``rtcheck._constraints``) is listed in ``pyproject.toml``.
"""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["rtcheck", "rtcheck.*"]), "rtcheck._constraints"],
    package_dir={"rtcheck._constraints": "constraints"},
)
