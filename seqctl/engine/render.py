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
  `RenderError`, a `ValueError` with a one-line message; `TemplateRefused` (a RenderError) is
  the sandbox's refusal or a broken limit, whatever the contact's values.

Limits (SPEC 8), so that no template can stall a tick or grow a message without bound:
- each rendered part is at most 256 KiB (counted while rendering, so it stops early);
- no `lipsum` or `namespace`, no macros, no nested or recursive loops, and a loop runs at most
  1,000 times (loops may not sit inside `{% set %}` or `{% filter %}` blocks, whose text is
  not streamed);
- widths and precisions in `center`, `indent`, `format`, `%` and `str.format` are at most
  1,000; `*`, `replace`, `join` and `wordwrap` may not produce more than 100,000 items;
  a value kept with `{% set %}` or `{% with %}` is at most 256 KiB; all of those together
  at most 16 million in one render (a loop building large values it never prints);
- only harmless methods of strings, lists and dicts can be called (no `encode`, `translate`,
  `to_bytes`, ...), and lists and dicts cannot be changed.
"""

from __future__ import annotations

import difflib
import hashlib
import inspect
import itertools
import operator
import re
import string
from collections.abc import Callable, Mapping
from contextvars import ContextVar
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
from jinja2.sandbox import ImmutableSandboxedEnvironment

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
_MAX_INT_BITS = 4096
_MAX_WIDTH = 1000
_MAX_LOOP = 1000
MAX_PART_BYTES = 256 * 1024
_NEAR_MISS_CUTOFF = 0.8


class RenderError(ValueError):
    """A template could not be rendered; the message is one line, ready for the user."""


class TemplateRefused(RenderError):
    """The sandbox refused the template or it broke a render limit: no contact can fix it.
    `line` is the template line where it happened, when known."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


ProblemKind = Literal["syntax", "unknown_variable", "near_miss", "refused"]


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


def _weight(value: Any, budget: int) -> int:
    """About how many characters or items `value` holds, counting nested containers (a list
    repeated inside a list counts each time); stops counting once over `budget`."""
    if isinstance(value, str | bytes):
        return len(value)
    if isinstance(value, bool):
        return 1
    if isinstance(value, int):
        return value.bit_length() // 8 + 1
    if isinstance(value, Mapping):
        value = list(itertools.chain.from_iterable(value.items()))
    if isinstance(value, list | tuple | set | frozenset):
        total = len(value)
        for item in value:
            if total > budget:
                break
            total += _weight(item, budget - total)
        return total
    return 1


def _refuse_big(value: Any, limit: int, what: str) -> Any:
    if _weight(value, limit) > limit:
        raise SecurityError(f"{what} is too large")
    return value


_PRINTF_SPEC = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d*))?[hlL]?[a-zA-Z%]")
_DIGITS = re.compile(r"\d+")


def _check_printf(template: Any) -> None:
    """Refuse a `%` format whose width or precision is over the limit or taken from the data."""
    if not isinstance(template, str) or "%" not in template:
        return
    for width, precision in _PRINTF_SPEC.findall(template):
        for number in (width, precision):
            if number == "*" or (number and int(number) > _MAX_WIDTH):
                raise SecurityError(f"format widths are limited to {_MAX_WIDTH}")


def _check_format_string(template: str) -> None:
    """The same for `str.format`: small widths, no width taken from the data."""
    for _, _, spec, _ in string.Formatter().parse(template):
        if not spec:
            continue
        if "{" in spec or any(int(n) > _MAX_WIDTH for n in _DIGITS.findall(spec)):
            raise SecurityError(f"format widths are limited to {_MAX_WIDTH}")


def _check_width(width: Any) -> None:
    size = len(width) if isinstance(width, str) else width
    if isinstance(size, int) and size > _MAX_WIDTH:
        raise SecurityError(f"widths are limited to {_MAX_WIDTH}")


def _check_product(count: int, what: str) -> None:
    if count > _MAX_PRODUCT_LENGTH:
        raise SecurityError(f"result of {what} too large")
    _spend(count)


# What one render may build in all, in characters or items: a loop of 1,000 rounds that each
# make a large value (never printed) must stop too. A normal email uses a few thousand.
_MAX_WORK = 16 * 1024 * 1024
_work: ContextVar[list[int]] = ContextVar("seqctl_render_work")


def _spend(amount: int) -> None:
    budget = _work.get(None)
    if budget is None:
        return
    budget[0] -= amount
    if budget[0] < 0:
        raise SecurityError("the template builds too much while rendering "
                            f"(over {_MAX_WORK // (1024 * 1024)} million characters)")


def _check_replace(text: Any, old: Any, new: Any, count: Any = None) -> None:
    if isinstance(text, str) and isinstance(old, str) and isinstance(new, str):
        growth = len(new) - len(old)
        if growth > 0:
            hits = text.count(old) if old else len(text) + 1
            if isinstance(count, int) and count >= 0:
                hits = min(hits, count)
            _check_product(len(text) + hits * growth, "replace")


def _check_join(items: Any, separator: Any) -> list[Any]:
    items = list(items)
    if isinstance(separator, str):
        _check_product(len(separator) * len(items), "join")
    return items


# The methods of plain values a merge template may call; everything else (encode, translate,
# expandtabs, to_bytes, ...) is refused. Lists and dicts cannot be changed (immutable sandbox).
_SAFE_METHODS: dict[type, frozenset[str]] = {
    str: frozenset(
        "capitalize casefold center count endswith find format index isalnum isalpha "
        "isascii isdecimal isdigit islower isnumeric isspace istitle isupper join ljust lower "
        "lstrip partition removeprefix removesuffix replace rfind rindex rjust rpartition "
        "rsplit rstrip split splitlines startswith strip swapcase title upper zfill".split()
    ),
    dict: frozenset({"get", "items", "keys", "values"}),
    list: frozenset({"count", "index"}),
    tuple: frozenset({"count", "index"}),
}


def _checked_method_args(method: Any, args: tuple[Any, ...],
                         kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """The arguments of a method call from a template, after refusing unsafe or huge ones."""
    owner = getattr(method, "__self__", None)
    name = getattr(method, "__name__", "")
    if owner is None or not inspect.isbuiltin(method) or inspect.ismodule(owner):
        return args
    kind = next((t for t in _SAFE_METHODS if isinstance(owner, t)), None)
    if kind is None or name not in _SAFE_METHODS[kind]:
        raise SecurityError(f"{type(owner).__name__}.{name}() is not allowed in merge templates")
    if kind is not str:
        return args
    if name in ("center", "ljust", "rjust", "zfill"):
        _check_width(args[0] if args else kwargs.get("width", 0))
    elif name == "replace":
        _check_replace(owner, *args[:3])
    elif name == "join" and args:
        return (_check_join(args[0], owner), *args[1:])
    return args


class _MergeEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox, made strict about unsafe access and huge results.

    Jinja's sandbox turns an unsafe attribute into an undefined value that renders as "";
    raising instead lets `render` report the template as broken rather than silently blank.
    """

    intercepted_binops = frozenset({"*", "**", "%"})

    def unsafe_undefined(self, obj: Any, attribute: str) -> Any:
        raise SecurityError(
            f"access to attribute {attribute!r} of {type(obj).__name__!r} object is unsafe"
        )

    def call_binop(self, context: Any, operator_name: str, left: Any, right: Any) -> Any:
        if operator_name == "%":
            _check_printf(left)
            return operator.mod(left, right)
        if operator_name == "**":
            if isinstance(right, int | float) and abs(right) > _MAX_EXPONENT:
                raise SecurityError("exponent too large")
            if isinstance(left, int) and isinstance(right, int):
                if left.bit_length() * abs(right) > _MAX_INT_BITS:
                    raise SecurityError("result of '**' too large")
            return operator.pow(left, right)
        if isinstance(left, int) and isinstance(right, int):
            if left.bit_length() + right.bit_length() > _MAX_INT_BITS:
                raise SecurityError("result of '*' too large")
        for sized, count in ((left, right), (right, left)):
            if isinstance(sized, str | list | tuple) and isinstance(count, int):
                _check_product(_weight(sized, _MAX_PRODUCT_LENGTH) * count, "'*'")
        return operator.mul(left, right)

    def wrap_str_format(self, value: Any) -> Any:
        if getattr(value, "__name__", "") in ("format", "format_map"):
            owner = getattr(value, "__self__", None)
            if isinstance(owner, str):
                _check_format_string(owner)
        return super().wrap_str_format(value)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        args = _checked_method_args(__obj, args, kwargs)
        return super().call(__context, __obj, *args, **kwargs)


def _guarded_filter(original: Callable[..., Any], check: Callable[..., Any]) -> Callable[..., Any]:
    """`original` with `check` run first on its arguments, bound by name (defaults applied)."""
    signature = inspect.signature(original)

    def guarded(*args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        check(**bound.arguments)
        return original(*args, **kwargs)

    if hasattr(original, "jinja_pass_arg"):
        guarded.jinja_pass_arg = original.jinja_pass_arg  # type: ignore[attr-defined]
    return guarded


def _check_indent(s: Any, width: Any, **_: Any) -> None:
    _check_width(width)
    lines = s.count("\n") + 1 if isinstance(s, str) else 1
    _check_product(lines * (len(width) if isinstance(width, str) else int(width or 0)), "indent")


def _check_wordwrap(s: Any, width: Any, wrapstring: Any, **_: Any) -> None:
    if isinstance(s, str) and isinstance(wrapstring, str) and isinstance(width, int):
        lines = len(s) // max(width, 1) + s.count("\n") + 1
        _check_product(lines * len(wrapstring), "wordwrap")


def _check_count(limit: int, name: str) -> Callable[..., None]:
    def check(**arguments: Any) -> None:
        value = arguments[name]
        if isinstance(value, int) and value > limit:
            raise SecurityError(f"{name} is limited to {limit}")
    return check


def _check_sum(start: Any, **_: Any) -> None:
    if not isinstance(start, int | float):
        raise SecurityError("sum adds numbers only")


_FILTER_CHECKS: dict[str, Callable[..., None]] = {
    "center": lambda value, width, **_: _check_width(width),
    "indent": _check_indent,
    "format": lambda value, **_: _check_printf(str(value)),
    "replace": lambda s, old, new, count, **_: _check_replace(s, old, new, count),
    "wordwrap": _check_wordwrap,
    "batch": _check_count(_MAX_LOOP, "linecount"),
    "slice": _check_count(_MAX_LOOP, "slices"),
    "tojson": _check_count(16, "indent"),
    "sum": _check_sum,
}


def _guarded_join(original: Callable[..., Any]) -> Callable[..., Any]:
    def join(eval_ctx: Any, value: Any, d: str = "", attribute: Any = None) -> str:
        return original(eval_ctx, _check_join(value, d), d, attribute)

    join.jinja_pass_arg = original.jinja_pass_arg  # type: ignore[attr-defined]
    return join


def _loop_items(items: Any) -> Any:
    """What a `{% for %}` iterates, refused when it has more than _MAX_LOOP items."""
    if isinstance(items, Undefined):
        return items
    taken = list(itertools.islice(iter(items), _MAX_LOOP + 1))
    if len(taken) > _MAX_LOOP:
        raise SecurityError(f"a loop may run at most {_MAX_LOOP} times")
    return taken


def _kept_value(value: Any) -> Any:
    """A value kept with `{% set %}` or `{% with %}`, refused over the part limit, so that
    re-setting a variable from itself cannot double it without bound."""
    weight = _weight(value, MAX_PART_BYTES)
    if weight > MAX_PART_BYTES:
        raise SecurityError("a value kept with set is too large")
    _spend(weight)
    return value


def _make_environment() -> _MergeEnvironment:
    env = _MergeEnvironment(
        undefined=ChainableUndefined,
        finalize=_finalize,
        autoescape=False,
        keep_trailing_newline=True,
        auto_reload=False,
    )
    for name in ("lipsum", "namespace"):
        del env.globals[name]
    env.globals["range"] = _small_range
    for name, check in _FILTER_CHECKS.items():
        env.filters[name] = _guarded_filter(env.filters[name], check)
    env.filters["join"] = _guarded_join(env.filters["join"])
    env.filters["default"] = _default
    env.filters["d"] = _default
    env.filters["_seqctl_loop"] = _loop_items
    env.filters["_seqctl_kept"] = _kept_value
    return env


def _small_range(*args: int) -> range:
    result = range(*args)
    if len(result) > _MAX_LOOP:
        raise SecurityError(f"range longer than {_MAX_LOOP}")
    return result


_ENV = _make_environment()
_GLOBAL_NAMES = frozenset(_ENV.globals)
_REFUSED_GLOBALS = frozenset({"lipsum", "namespace"})


def _syntax_message(error: TemplateSyntaxError) -> str:
    where = f" on line {error.lineno}" if error.lineno else ""
    return f"template syntax error{where}: {error.message}"


def _work_problem(ast: nodes.Template) -> tuple[str, int | None] | None:
    """Why a template could run for an unbounded time, and the line, or None. A merge template
    has no use for macros or nested and recursive loops, and without them its work is bounded
    by its size and its data; a tick renders many and must not stall on one."""
    macro = next(ast.find_all((nodes.Macro, nodes.CallBlock)), None)
    if macro is not None:
        return "macros are not allowed in merge templates", macro.lineno
    for loop in ast.find_all(nodes.For):
        if loop.recursive:
            return "recursive loops are not allowed", loop.lineno
        if next(loop.find_all(nodes.For), None) is not None:
            return "nested loops are not allowed", loop.lineno
    for block in ast.find_all((nodes.AssignBlock, nodes.FilterBlock)):
        loop = next(block.find_all(nodes.For), None)
        if loop is not None:
            return "loops inside set or filter blocks are not allowed", loop.lineno
    for call in ast.find_all(nodes.Call):
        if isinstance(call.node, nodes.Name) and call.node.name in _REFUSED_GLOBALS:
            return f"{call.node.name}() is not allowed in merge templates", call.lineno
    return None


def _filtered(node: nodes.Expr, name: str) -> nodes.Filter:
    return nodes.Filter(node, name, [], [], None, None, lineno=node.lineno)


def _bound(ast: nodes.Template) -> nodes.Template:
    """The template with its loops and kept values passed through the limit filters."""
    for loop in ast.find_all(nodes.For):
        loop.iter = _filtered(loop.iter, "_seqctl_loop")
    for assign in ast.find_all(nodes.Assign):
        assign.node = _filtered(assign.node, "_seqctl_kept")
    for block in ast.find_all(nodes.With):
        block.values = [_filtered(value, "_seqctl_kept") for value in block.values]
    return ast


@lru_cache(maxsize=2048)
def _compile(template: str) -> Template:
    ast = _parse(template)
    problem = _work_problem(ast)
    if problem:
        message, line = problem
        where = f" (line {line})" if line else ""
        raise TemplateRefused(f"template not allowed: {message}{where}", line)
    return _ENV.from_string(_bound(ast))


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

    Compiled templates are cached. Raises TemplateRefused for what the sandbox refuses and for
    broken limits, RenderError for syntax errors and errors while rendering.
    """
    if "{" not in template and "\r" not in template:
        return template
    compiled = _compile(template)
    budget = _work.set([_MAX_WORK])
    try:
        return _bounded_text(compiled, context)
    except SecurityError as error:
        raise TemplateRefused(f"template not allowed: {error}",
                              _template_line(compiled, error)) from None
    except TemplateError as error:
        raise RenderError(f"template error: {error}") from None
    except (ArithmeticError, TypeError, ValueError, LookupError, AttributeError,
            RecursionError) as error:
        if isinstance(error, RenderError):
            raise
        raise RenderError(f"template error: {type(error).__name__}: {error}") from None
    finally:
        _work.reset(budget)


def _template_line(compiled: Template, error: BaseException) -> int | None:
    """The template line an error was raised on."""
    line = None
    trace = error.__traceback__
    while trace is not None:
        if trace.tb_frame.f_code.co_filename == "<template>":
            line = compiled.get_corresponding_lineno(trace.tb_lineno)
        trace = trace.tb_next
    return line


def _bounded_text(compiled: Template, context: Mapping[str, Any]) -> str:
    """The rendered text, stopped as soon as it passes MAX_PART_BYTES."""
    parts: list[str] = []
    size = 0
    chunks = compiled.root_render_func(compiled.new_context(dict(context)))
    for chunk in chunks:
        size += len(chunk)
        if size > MAX_PART_BYTES:
            line = compiled.get_corresponding_lineno(chunks.gi_frame.f_lineno)
            raise _too_long(line)
        parts.append(chunk)
    text = "".join(parts)
    if not text.isascii() and len(text.encode("utf-8")) > MAX_PART_BYTES:
        raise _too_long(None)
    return text


def _too_long(line: int | None) -> TemplateRefused:
    return TemplateRefused(
        f"template not allowed: the rendered text is over {MAX_PART_BYTES // 1024} KiB", line)


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


_DEFAULT_FILTERS = frozenset({"default", "d"})


def variables_without_default(template: str) -> set[str]:
    """The merge variables a template prints with no fallback for an empty value: not under
    a `default` filter, not the left side of `or`, and not inside an `{% if %}` (or `x if
    ... else`) that tests that variable. Those are the fields whose absence shows in the
    email ("I noticed  has been growing"). Raises RenderError on a syntax error."""
    ast = _parse(template)
    names = set(_undeclared_names(ast))
    found: set[str] = set()

    def visit(node: nodes.Node, guarded: frozenset[str]) -> None:
        if isinstance(node, nodes.Filter) and node.name in _DEFAULT_FILTERS:
            for child in (*node.args, *node.kwargs):
                visit(child, guarded)
            return      # everything under `| default(...)` has its fallback
        if isinstance(node, nodes.Or):
            visit(node.right, guarded)
            return      # `x or "there"`: x falls back
        if isinstance(node, nodes.If | nodes.CondExpr):
            tested = guarded | {n.name for n in (node.test, *node.test.find_all(nodes.Name))
                                 if isinstance(n, nodes.Name)}
            for child in node.iter_child_nodes():
                if child is not node.test:
                    visit(child, tested)
            return
        if isinstance(node, nodes.Name) and node.ctx == "load":
            if node.name in names and node.name not in guarded:
                found.add(node.name)
        for child in node.iter_child_nodes():
            visit(child, guarded)

    visit(ast, frozenset())
    return found


def blank_fields(context: Mapping[str, Any], names: set[str] | list[str]) -> list[str]:
    """The names, sorted, whose value in `context` is missing or only whitespace."""
    return sorted(name for name in names if _is_missing(context.get(name)))


def near_miss(name: str, known: set[str]) -> str | None:
    """The known name `name` is probably a misspelling of, or None."""
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
        message, line = problem
        return [TemplateProblem("syntax", f"template not allowed: {message}", line, None, None)]
    all_known = set(known) | set(BUILTIN_VARIABLES)
    problems: list[TemplateProblem] = []
    found = _undeclared_names(ast)
    for name in sorted(found, key=lambda n: (found[n] or 0, n)):
        if name in all_known:
            continue
        line = found[name]
        suggestion = near_miss(name, all_known)
        if suggestion is not None:
            message = f"unknown merge variable '{name}' — did you mean {suggestion}?"
            problems.append(TemplateProblem("near_miss", message, line, name, suggestion))
        else:
            message = f"unknown merge variable '{name}' (not built in and no contact has it)"
            problems.append(TemplateProblem("unknown_variable", message, line, name, None))
    refused = _sample_render_problem(template, all_known | set(found))
    if refused is not None:
        problems.append(refused)
    return problems


def sample_context(names: set[str]) -> dict[str, str]:
    """A contact with every field filled: plausible values for the builtin variables, and
    "Sample <name>" for the others."""
    context = {name: f"Sample {name.replace('_', ' ')}" for name in names}
    context.update(first_name="Alexandra", last_name="Sample", company_name="Sample Company Ltd",
                   owner_first_name="Riley", owner_email="riley@sample.example",
                   email="alexandra.sample@sample.example")
    return context


def _sample_render_problem(template: str, names: set[str]) -> TemplateProblem | None:
    """What the sandbox refuses, or a broken limit, when the template is rendered for a sample
    contact with every field filled. Errors that a contact's real values could avoid (an int
    of a text, a division by a field) are left to send time."""
    try:
        render(template, sample_context(names))
    except TemplateRefused as error:
        return TemplateProblem("refused", str(error), error.line, None, None)
    except RenderError:
        return None
    return None


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
