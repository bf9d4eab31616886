"""Find, read and validate protocol files (``constraints/*.yaml``) and user name maps.

Protocols are looked up by id in the folders of ``$RTCHECK_PROTOCOL_PATH`` (``os.pathsep``
separated, searched first) and then in the repository's ``constraints/`` folder. A file
found by id must be named ``<id>.yaml``. Any error names the file and the key path.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

import rtcheck
from rtcheck.errors import ConfigError, ProtocolError
from rtcheck.protocol.schema import Protocol

ENV_VAR = "RTCHECK_PROTOCOL_PATH"
_SUFFIXES = (".yaml", ".yml")
_MAX_ERRORS = 4


def builtin_protocol_dir() -> Path:
    """The protocols shipped with rtcheck.

    In a source checkout (editable install) the top-level ``constraints/`` folder next to
    the package; in an installed wheel, its copy ``rtcheck/_constraints`` (``setup.py``).
    """
    package = Path(rtcheck.__file__).resolve().parent
    checkout = package.parent
    if (checkout / "pyproject.toml").is_file() and (checkout / "constraints").is_dir():
        return checkout / "constraints"
    return package / "_constraints"


def protocol_dirs() -> tuple[Path, ...]:
    """Folders searched for protocols, in order: ``$RTCHECK_PROTOCOL_PATH``, then built-in."""
    extra = [Path(p).expanduser() for p in os.environ.get(ENV_VAR, "").split(os.pathsep) if p]
    return (*extra, builtin_protocol_dir())


def load_protocol(id_or_path: str | os.PathLike[str]) -> Protocol:
    """Load a protocol by id (``tg101``) or from a YAML file path.

    Raises
    ------
    ProtocolError
        Unknown id, unreadable file, invalid YAML or a schema violation (file and key named).
    """
    text = str(id_or_path)
    path = Path(text).expanduser()
    if path.suffix.lower() in _SUFFIXES or path.is_file() or os.sep in text:
        if not path.is_file():
            raise ProtocolError("protocol file not found", path=text)
        return read_protocol_file(path)
    found = _find_by_id(text)
    if found is None:
        known = ", ".join(p.id for p in list_protocols()) or "none"
        searched = ", ".join(str(d) for d in protocol_dirs())
        raise ProtocolError(
            f"unknown protocol {text!r}; available: {known} (searched {searched}; "
            f"add folders with ${ENV_VAR} or give a .yaml path)"
        )
    return _read_named(found, text)


def list_protocols() -> tuple[Protocol, ...]:
    """Every protocol found (the first file of each id wins), sorted by id."""
    seen: dict[str, Protocol] = {}
    for folder in protocol_dirs():
        if not folder.is_dir():
            continue
        for path in sorted(p for p in folder.iterdir() if p.suffix.lower() in _SUFFIXES):
            if path.stem not in seen:
                seen[path.stem] = _read_named(path, path.stem)
    return tuple(seen[k] for k in sorted(seen))


def _find_by_id(protocol_id: str) -> Path | None:
    for folder in protocol_dirs():
        for suffix in _SUFFIXES:
            candidate = folder / f"{protocol_id}{suffix}"
            if candidate.is_file():
                return candidate
    return None


def _read_named(path: Path, protocol_id: str) -> Protocol:
    protocol = read_protocol_file(path)
    if protocol.id != protocol_id:
        raise ProtocolError(
            f"id {protocol.id!r} does not match the file name; rename the file "
            f"to {protocol.id}.yaml or change the id",
            path=str(path),
        )
    return protocol


def read_protocol_file(path: str | os.PathLike[str]) -> Protocol:
    """Read and validate one protocol file."""
    path = Path(path)
    data = _read_yaml(path, ProtocolError)
    if not isinstance(data, dict):
        raise ProtocolError("a protocol file must be a YAML mapping (key: value)", path=str(path))
    levels = data.get("levels")
    context = {"levels": levels if _is_str_list(levels) else None}
    try:
        protocol = Protocol.model_validate(data, context=context)
    except ValidationError as exc:
        raise ProtocolError(_describe_errors(exc, data), path=str(path)) from None
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return protocol.model_copy(update={"source_file": str(path), "source_sha256": digest})


def load_name_map(path: str | os.PathLike[str]) -> dict[str, str | None]:
    """Read a user names map: YAML ``{protocol structure name: ROI name or null}``.

    Raises
    ------
    ConfigError
        Unreadable file, invalid YAML, or anything but a flat mapping of names.
    """
    path = Path(path)
    data = _read_yaml(path, ConfigError)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError("a names map must be a mapping 'protocol name: ROI name'", str(path))
    out: dict[str, str | None] = {}
    for key, value in data.items():
        if not isinstance(key, str) or isinstance(value, dict | list):
            raise ConfigError(
                f"entry {key!r}: each line must be 'protocol name: ROI name' (or null)", str(path)
            )
        out[key] = None if value is None else str(value)
    return out


# ---------------------------------------------------------------------- YAML
class _StrictLoader(yaml.SafeLoader):
    """Safe YAML loader that refuses duplicate keys (PyYAML would keep the last silently)."""


def _mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    out: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in out:
            mark = key_node.start_mark
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (line {mark.line + 1})", mark
            )
        out[key] = loader.construct_object(value_node, deep=deep)
    return out


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def _read_yaml(path: Path, error: type[ProtocolError] | type[ConfigError]) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"cannot read file: {exc}", path=str(path)) from None
    try:
        return yaml.load(text, Loader=_StrictLoader)
    except yaml.YAMLError as exc:
        raise error(f"not valid YAML: {_yaml_problem(exc)}", path=str(path)) from None


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"{problem}{where}"


# ---------------------------------------------------------------------- errors
def _describe_errors(exc: ValidationError, data: Mapping[str, Any]) -> str:
    errors = exc.errors(include_url=False)
    parts = [_describe_one(err, data) for err in errors[:_MAX_ERRORS]]
    more = len(errors) - _MAX_ERRORS
    return "; ".join(parts) + (f"; and {more} more problem(s)" if more > 0 else "")


def _describe_one(err: Mapping[str, Any], data: Mapping[str, Any]) -> str:
    loc = [str(x) for x in err["loc"] if x != "[key]"]
    kind = err["type"]
    if kind == "extra_forbidden":
        message = "unknown key (see constraints/README.md for the allowed keys)"
    elif kind == "missing":
        message = "required key missing"
    else:
        message = str(err["msg"]).removeprefix("Value error, ")
        if err["loc"] and err["loc"][-1] == "[key]":
            message = f"invalid key {err['input']!r}: {message}"
    if not loc:
        return message  # a whole-file check; the message names its own key path
    return f"{'.'.join(loc)}{_row_hint(err['loc'], data)}: {message}"


def _row_hint(loc: tuple[Any, ...], data: Mapping[str, Any]) -> str:
    """`` [SpinalCord Max[Gy]]`` when the location is inside a constraint row."""
    node: Any = data
    hint = ""
    for part in loc:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            break
        if isinstance(node, dict) and "structure" in node and "metric" in node:
            hint = f" [{node['structure']} {node['metric']}]"
    return hint


def _is_str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)
