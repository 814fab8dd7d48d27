"""Merge rendering: Jinja2 templates run in the sandbox against one contact's values.

One rendering path serves `preview` and sending, so what is previewed is what is sent.

Semantics:
- A missing variable renders as "" (never "None" or braces); so does a value that is None.
- `default` (alias `d`) also treats an empty or whitespace-only string as missing, because a blank
  CSV cell means "no value": `{{ first_name | default("there") }}` gives "there" when the contact
  has no first name, whether the column is absent or empty. `default(x, true)` keeps Jinja's
  meaning (any falsy value is replaced).
- Values are inserted as they are: multi-line values keep their line breaks. Templates keep
  their trailing newline. No HTML escaping here; the message builder escapes the HTML part.
- Anything the sandbox refuses (`{{ ''.__class__ }}`), syntax errors and runtime errors raise
  `RenderError`, a `ValueError` with a one-line message.
"""

from __future__ import annotations

import difflib
import hashlib
import operator
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

from jinja2 import (
    ChainableUndefined,
    Template,
    TemplateError,
    TemplateSyntaxError,
    Undefined,
    meta,
    nodes,
)
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment

BUILTIN_VARIABLES: tuple[str, ...] = (
    "first_name",
    "last_name",
    "company_name",
    "owner_first_name",
    "owner_email",
    "email",
)

_MAX_PRODUCT_LENGTH = 100_000
_MAX_EXPONENT = 100
_NEAR_MISS_CUTOFF = 0.8


class RenderError(ValueError):
    """A template could not be rendered; the message is one line, ready for the user."""


ProblemKind = Literal["syntax", "unknown_variable", "near_miss"]


@dataclass(frozen=True)
class TemplateProblem:
    """One finding of `check_template`. `unknown_variable` is a warning; the others are errors."""

    kind: ProblemKind
    message: str
    line: int | None
    variable: str | None
    suggestion: str | None


def _is_missing(value: Any) -> bool:
    return (
        value is None
        or isinstance(value, Undefined)
        or (isinstance(value, str) and not value.strip())
    )


def _default(value: Any, default_value: Any = "", boolean: bool = False) -> Any:
    if _is_missing(value) or (boolean and not value):
        return default_value
    return value


def _finalize(value: Any) -> Any:
    return "" if value is None else value


class _MergeEnvironment(SandboxedEnvironment):
    """The sandbox, made strict about unsafe access and huge results.

    Jinja's sandbox turns an unsafe attribute into an undefined value that renders as "";
    raising instead lets `render` report the template as broken rather than silently blank.
    """

    intercepted_binops = frozenset({"*", "**"})

    def unsafe_undefined(self, obj: Any, attribute: str) -> Any:
        raise SecurityError(
            f"access to attribute {attribute!r} of {type(obj).__name__!r} object is unsafe"
        )

    def call_binop(self, context: Any, operator_name: str, left: Any, right: Any) -> Any:
        if operator_name == "**":
            if isinstance(right, int | float) and abs(right) > _MAX_EXPONENT:
                raise SecurityError("exponent too large")
            return operator.pow(left, right)
        for sized, count in ((left, right), (right, left)):
            if isinstance(sized, str | list | tuple) and isinstance(count, int):
                if len(sized) * count > _MAX_PRODUCT_LENGTH:
                    raise SecurityError("result of '*' too large")
        return operator.mul(left, right)


def _make_environment() -> _MergeEnvironment:
    env = _MergeEnvironment(
        undefined=ChainableUndefined,
        finalize=_finalize,
        autoescape=False,
        keep_trailing_newline=True,
        auto_reload=False,
    )
    env.filters["default"] = _default
    env.filters["d"] = _default
    return env


_ENV = _make_environment()
_GLOBAL_NAMES = frozenset(_ENV.globals)


def _syntax_message(error: TemplateSyntaxError) -> str:
    where = f" on line {error.lineno}" if error.lineno else ""
    return f"template syntax error{where}: {error.message}"


_MAX_LOOP = 1000


def _small_range(*args: int) -> range:
    result = range(*args)
    if len(result) > _MAX_LOOP:
        raise SecurityError(f"range longer than {_MAX_LOOP}")
    return result


_ENV.globals["range"] = _small_range


def _work_problem(ast: nodes.Template) -> str | None:
    """Why a template could run for an unbounded time, or None. A merge template has no use for
    macros or nested and recursive loops, and without them its work is bounded by its size and
    its data; a tick renders many and must not stall on one."""
    if next(ast.find_all((nodes.Macro, nodes.CallBlock)), None) is not None:
        return "macros are not allowed in merge templates"
    for loop in ast.find_all(nodes.For):
        if loop.recursive:
            return f"recursive loops are not allowed (line {loop.lineno})"
        if next(loop.find_all(nodes.For), None) is not None:
            return f"nested loops are not allowed (line {loop.lineno})"
    return None


@lru_cache(maxsize=2048)
def _compile(template: str) -> Template:
    ast = _parse(template)
    problem = _work_problem(ast)
    if problem:
        raise RenderError(f"template not allowed: {problem}")
    return _ENV.from_string(ast)


def merge_context(contact: Mapping[str, Any], owner: Mapping[str, Any] | None) -> dict[str, str]:
    """The merge values for one contact: every builtin variable plus the custom fields.

    `contact` has email, first_name, last_name, company_name, owner_email and custom_fields;
    `owner` has email, first_name, last_name, or is None. Missing or None values become "".
    Custom fields never override builtins.
    """
    context: dict[str, str] = {}
    for name, value in (contact.get("custom_fields") or {}).items():
        context[str(name)] = "" if value is None else str(value)
    owner = owner or {}
    builtins = {
        "first_name": contact.get("first_name"),
        "last_name": contact.get("last_name"),
        "company_name": contact.get("company_name"),
        "owner_first_name": owner.get("first_name"),
        "owner_email": contact.get("owner_email") or owner.get("email"),
        "email": contact.get("email"),
    }
    for name, value in builtins.items():
        context[name] = "" if value is None else str(value)
    return context


def render(template: str, context: Mapping[str, Any]) -> str:
    """Render a merge template against `context` in the sandbox (see the module docstring).

    Compiled templates are cached. Raises RenderError for syntax errors, unsafe access and
    errors while rendering.
    """
    if "{" not in template and "\r" not in template:
        return template
    compiled = _compile(template)
    try:
        return compiled.render(context)
    except SecurityError as error:
        raise RenderError(f"template not allowed: {error}") from None
    except TemplateError as error:
        raise RenderError(f"template error: {error}") from None
    except (ArithmeticError, TypeError, ValueError, LookupError, AttributeError,
            RecursionError) as error:
        raise RenderError(f"template error: {type(error).__name__}: {error}") from None


def _parse(template: str) -> nodes.Template:
    try:
        return _ENV.parse(template)
    except TemplateSyntaxError as error:
        raise RenderError(_syntax_message(error)) from None


def _undeclared_names(ast: nodes.Template) -> dict[str, int | None]:
    """Undeclared variable names with the line of their first use."""
    undeclared = meta.find_undeclared_variables(ast) - _GLOBAL_NAMES
    first_line: dict[str, int | None] = {}
    for node in ast.find_all(nodes.Name):
        if node.name in undeclared and node.ctx == "load":
            line = first_line.get(node.name)
            if line is None or (node.lineno and node.lineno < line):
                first_line[node.name] = node.lineno
    for name in undeclared:
        first_line.setdefault(name, None)
    return first_line


def template_variables(template: str) -> set[str]:
    """The merge variables a template reads (its undeclared names, minus Jinja's globals).

    Raises RenderError on a syntax error.
    """
    return set(_undeclared_names(_parse(template)))


def _near_miss(name: str, known: set[str]) -> str | None:
    lowered = {candidate.lower(): candidate for candidate in known}
    if name.lower() in lowered:
        return lowered[name.lower()]
    matches = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=_NEAR_MISS_CUTOFF)
    return lowered[matches[0]] if matches else None


def check_template(template: str, known: set[str]) -> list[TemplateProblem]:
    """Problems in a template: a syntax error, or variables that are not in `known`.

    `known` is the custom fields (and anything else) the caller knows; the builtin variables are
    always known. A name close to a known one (`frist_name`) is a `near_miss` with a suggestion;
    any other unknown name is an `unknown_variable` (a warning: the column may come later).
    """
    try:
        ast = _ENV.parse(template)
    except TemplateSyntaxError as error:
        return [TemplateProblem("syntax", _syntax_message(error), error.lineno, None, None)]
    problem = _work_problem(ast)
    if problem:
        return [TemplateProblem("syntax", f"template not allowed: {problem}", None, None, None)]
    all_known = set(known) | set(BUILTIN_VARIABLES)
    problems: list[TemplateProblem] = []
    found = _undeclared_names(ast)
    for name in sorted(found, key=lambda n: (found[n] or 0, n)):
        if name in all_known:
            continue
        line = found[name]
        suggestion = _near_miss(name, all_known)
        if suggestion is not None:
            message = f"unknown merge variable '{name}' — did you mean {suggestion}?"
            problems.append(TemplateProblem("near_miss", message, line, name, suggestion))
        else:
            message = f"unknown merge variable '{name}' (not built in and no contact has it)"
            problems.append(TemplateProblem("unknown_variable", message, line, name, None))
    return problems


_REPLY_PREFIX = re.compile(
    r"^(?:\s*(?:re|aw|sv|antw)\s*(?:\[\d+\]|\(\d+\))?\s*:)+\s*", re.IGNORECASE
)


def reply_subject(previous_subject: str) -> str:
    """`Re: <subject>` with exactly one `Re:`: existing Re/RE/Aw/Sv/Antw prefixes are replaced."""
    core = _REPLY_PREFIX.sub("", header_safe(previous_subject))
    return f"Re: {core}" if core else "Re:"


_LINE_BREAK_CHARS = "\r\n\t\v\f\x1c\x1d\x1e\x85\u2028\u2029"
_LINE_BREAKS = re.compile(f"[{_LINE_BREAK_CHARS}]+")
_CONTROL_CHARS: dict[int, None] = {
    code: None
    for code in [*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0)]
    if chr(code) not in _LINE_BREAK_CHARS
}


def header_safe(value: str) -> str:
    """A value safe for one header line: line breaks and tabs become one space, other control
    characters are removed, and the ends are trimmed. It can never start a new header."""
    if value.isprintable():
        return value.strip()
    return _LINE_BREAKS.sub(" ", value.translate(_CONTROL_CHARS)).strip()


def variant_for(enrollment_id: int) -> str:
    """The A/B variant of an enrollment: "A" or "B", stable, from SHA-256 of the id (~50/50)."""
    digest = hashlib.sha256(str(int(enrollment_id)).encode("ascii")).digest()
    return "A" if digest[0] & 1 == 0 else "B"
