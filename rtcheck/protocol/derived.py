"""A tiny grammar for derived structures, parsed into typed, immutable expression trees.

Grammar (binary operators are left-associative and of equal precedence; use parentheses)::

    expr     := term (op term)*
    op       := "+" (union) | " - " (difference) | "&" (intersection)
    term     := NAME | "NAME WITH SPACES" | TARGETS | func | "(" expr ")"
    func     := expand(expr, mm) | shrink(expr, mm) | ring(expr, inner_mm, outer_mm)
    TARGETS  := PTV | GTV | CTV | ITV      (every target of that kind in the plan)

A ``-`` is a difference only with whitespace on both sides or next to a parenthesis:
``Lungs-GTV`` is the TG-263 *name* ``Lungs-GTV``, ``Lungs - GTV`` is lungs minus every GTV.
Examples: ``Lung_L + Lung_R``, ``Lungs - GTV``, ``ring(PTV, 20, 30)``, ``expand(PTV, 20)``.

The voxel work is done in :mod:`rtcheck.geometry`; here only the meaning is fixed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from rtcheck.names import TargetKind


class SetOp(StrEnum):
    """Boolean operation between two structures."""

    UNION = "+"
    DIFFERENCE = "-"
    INTERSECTION = "&"


@dataclass(frozen=True)
class StructureRef:
    """A structure named in the protocol (matched to an ROI like any protocol name)."""

    name: str

    def to_text(self) -> str:
        """Expression text."""
        simple = re.fullmatch(r"[A-Za-z_][A-Za-z0-9_^~.]*(?:-[A-Za-z0-9_^~.]+)*", self.name)
        return self.name if simple and self.name not in _TARGET_WORDS else f'"{self.name}"'


@dataclass(frozen=True)
class TargetGroup:
    """Every target of one kind (``GTV`` = all GTVs of the plan)."""

    kind: TargetKind

    def to_text(self) -> str:
        """Expression text."""
        return self.kind.value


@dataclass(frozen=True)
class Combine:
    """``left op right``."""

    op: SetOp
    left: Expr
    right: Expr

    def to_text(self) -> str:
        """Expression text."""
        right = self.right.to_text()
        if isinstance(self.right, Combine):
            right = f"({right})"
        return f"{self.left.to_text()} {self.op.value} {right}"


@dataclass(frozen=True)
class Expand:
    """Isotropic 3-D margin of ``margin_mm`` (negative: contraction)."""

    operand: Expr
    margin_mm: float

    def to_text(self) -> str:
        """Expression text."""
        return f"expand({self.operand.to_text()}, {_num(self.margin_mm)})"


@dataclass(frozen=True)
class Ring:
    """Shell between ``inner_mm`` and ``outer_mm`` outside the operand's surface."""

    operand: Expr
    inner_mm: float
    outer_mm: float

    def to_text(self) -> str:
        """Expression text."""
        return f"ring({self.operand.to_text()}, {_num(self.inner_mm)}, {_num(self.outer_mm)})"


Expr = StructureRef | TargetGroup | Combine | Expand | Ring

_TARGET_WORDS = {k.value for k in TargetKind}
_TOKEN = re.compile(
    r"""\s*(?:
        (?P<quoted>"[^"]*")
      | (?P<number>\d+(?:\.\d+)?)
      | (?P<name>[A-Za-z_][A-Za-z0-9_^~.]*(?:-[A-Za-z0-9_^~.]+)*)
      | (?P<op>[-+&(),])
    )""",
    re.X,
)


class ExpressionError(ValueError):
    """A derived-structure expression is malformed."""


def parse_expression(text: str) -> Expr:
    """Parse a derived-structure expression.

    Raises
    ------
    ExpressionError
        Saying where the text stops making sense.
    """
    parser = _Parser(text)
    expr = parser.expr()
    if parser.peek() is not None:
        parser.error(f"unexpected {parser.peek()!r}")
    return expr


def references(expr: Expr) -> tuple[str, ...]:
    """Names of the structures an expression uses (targets groups excluded), in order."""
    if isinstance(expr, StructureRef):
        return (expr.name,)
    if isinstance(expr, TargetGroup):
        return ()
    if isinstance(expr, Combine):
        return tuple(dict.fromkeys(references(expr.left) + references(expr.right)))
    return references(expr.operand)


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = self._tokenise(text)
        self.pos = 0

    def _tokenise(self, text: str) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        pos = 0
        while pos < len(text):
            if text[pos:].strip() == "":
                break
            m = _TOKEN.match(text, pos)
            if m is None or m.end() == pos:
                self.error(f"cannot read {text[pos:].strip()!r}")
            assert m is not None
            kind = m.lastgroup or ""
            out.append((kind, m.group(kind)))
            pos = m.end()
        return out

    def error(self, problem: str) -> None:
        raise ExpressionError(f"invalid derived-structure expression {self.text!r}: {problem}")

    def peek(self) -> str | None:
        return self.tokens[self.pos][1] if self.pos < len(self.tokens) else None

    def take(self, expected: str | None = None) -> tuple[str, str]:
        if self.pos >= len(self.tokens):
            self.error("unexpected end" + (f", expected {expected!r}" if expected else ""))
        tok = self.tokens[self.pos]
        if expected is not None and tok[1] != expected:
            self.error(f"expected {expected!r}, found {tok[1]!r}")
        self.pos += 1
        return tok

    def expr(self) -> Expr:
        left = self.term()
        while self.peek() in ("+", "-", "&"):
            op = SetOp(self.take()[1])
            left = Combine(op, left, self.term())
        return left

    def term(self) -> Expr:
        kind, value = self.take()
        if value == "(" and kind == "op":
            inner = self.expr()
            self.take(")")
            return inner
        if kind == "quoted":
            name = value[1:-1].strip()
            if not name:
                self.error("empty quoted name")
            return StructureRef(name)
        if kind != "name":
            self.error(f"expected a structure name, found {value!r}")
        if self.peek() == "(":
            return self.function(value)
        if value in _TARGET_WORDS:
            return TargetGroup(TargetKind(value))
        return StructureRef(value)

    def function(self, name: str) -> Expr:
        self.take("(")
        operand = self.expr()
        args: list[float] = []
        while self.peek() == ",":
            self.take(",")
            args.append(self.number())
        self.take(")")
        return self._build(name.lower(), operand, args)

    def _build(self, name: str, operand: Expr, args: list[float]) -> Expr:
        arity = {"expand": 1, "shrink": 1, "ring": 2}
        if name not in arity:
            self.error(f"unknown function {name!r} (use expand, shrink or ring)")
        if len(args) != arity[name]:
            self.error(f"{name} takes a structure and {arity[name]} number(s) in mm")
        if name == "expand":
            return Expand(operand, args[0])
        if name == "shrink":
            return Expand(operand, -args[0])
        inner, outer = args
        if not 0 <= inner < outer:
            self.error("ring(structure, inner_mm, outer_mm) needs 0 <= inner < outer")
        return Ring(operand, inner, outer)

    def number(self) -> float:
        sign = 1.0
        if self.peek() == "-":
            self.take()
            sign = -1.0
        kind, value = self.take()
        if kind != "number":
            self.error(f"expected a number of mm, found {value!r}")
        return sign * float(value)


def _num(x: float) -> str:
    return f"{x:g}"
