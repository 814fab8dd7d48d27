"""Merge rendering (spec section 8): sandboxed Jinja2, empty for missing, near-miss checks."""

from __future__ import annotations

import re
import tracemalloc
import unicodedata
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from seqctl.engine.render import (
    BUILTIN_VARIABLES,
    MAX_PART_BYTES,
    RenderError,
    TemplateRefused,
    check_template,
    header_safe,
    merge_context,
    render,
    reply_subject,
    template_variables,
    variant_for,
)

CONTACT = {
    "email": "jane@initech.com",
    "first_name": "Jane",
    "last_name": "Smith",
    "company_name": "Initech",
    "owner_email": "sam@acme.com",
    "custom_fields": {"favorite_tool": "Jira", "notes": "line one\nline two"},
}
OWNER = {"email": "sam@acme.com", "first_name": "Sam", "last_name": "Carter"}


def test_merge_context_has_every_builtin_and_the_custom_fields():
    context = merge_context(CONTACT, OWNER)
    assert set(BUILTIN_VARIABLES) <= set(context)
    assert context["owner_first_name"] == "Sam"
    assert context["favorite_tool"] == "Jira"
    assert context["email"] == "jane@initech.com"


def test_merge_context_turns_none_and_missing_values_into_empty_strings():
    context = merge_context({"email": "a@b.com", "first_name": None}, None)
    assert context == {
        "first_name": "",
        "last_name": "",
        "company_name": "",
        "owner_first_name": "",
        "owner_email": "",
        "email": "a@b.com",
    }


def test_custom_field_cannot_override_a_builtin():
    contact = {**CONTACT, "custom_fields": {"first_name": "Mallory"}}
    assert merge_context(contact, OWNER)["first_name"] == "Jane"


def test_merge_variables_are_filled_in():
    context = merge_context(CONTACT, OWNER)
    assert render("Hi {{first_name}} at {{ company_name }}", context) == "Hi Jane at Initech"


def test_missing_variable_renders_empty_never_none_or_braces():
    out = render("Hi {{ nickname }}!{{ nickname.short }}", {"first_name": "Jane"})
    assert out == "Hi !"


def test_none_value_renders_empty():
    assert render("[{{ first_name }}]", {"first_name": None}) == "[]"


@pytest.mark.parametrize("context", [{}, {"first_name": ""}, {"first_name": "   "}])
def test_default_filter_applies_when_value_is_missing_or_blank(context):
    assert render('Hi {{ first_name | default("there") }},', context) == "Hi there,"


def test_default_filter_keeps_a_real_value():
    assert render('Hi {{ first_name | default("there") }},', {"first_name": "Jane"}) == "Hi Jane,"


def test_default_filter_boolean_mode_keeps_jinja_meaning():
    assert render("{{ count | d('none', true) }}", {"count": 0}) == "none"


def test_multi_line_values_keep_their_line_breaks():
    out = render("Notes:\n{{ notes }}\nBye", merge_context(CONTACT, OWNER))
    assert out == "Notes:\nline one\nline two\nBye"


def test_template_trailing_newline_is_kept():
    assert render("Hi {{ first_name }}\n", {"first_name": "Jane"}) == "Hi Jane\n"


def test_values_are_not_html_escaped():
    assert render("{{ company_name }}", {"company_name": "AT&T <US>"}) == "AT&T <US>"


def test_filters_work():
    assert render("{{ first_name | upper }}", {"first_name": "jane"}) == "JANE"


@given(st.text())
def test_any_value_is_inserted_verbatim(value):
    assert render("{{ v }}", {"v": value}) == value


@pytest.mark.parametrize(
    "template",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ ''.__class__ }}",
        "{{ first_name.__class__.__base__.__subclasses__() }}",
        "{{ cycler.__init__.__globals__ }}",
    ],
)
def test_sandbox_blocks_attribute_escapes_with_a_render_error(template):
    with pytest.raises(RenderError) as caught:
        render(template, {"first_name": "Jane"})
    assert isinstance(caught.value, ValueError)
    assert "\n" not in str(caught.value)
    assert "unsafe" in str(caught.value)


def test_huge_repetition_is_refused():
    with pytest.raises(RenderError):
        render("{{ 'x' * 100000000 }}", {})


def test_runtime_error_is_a_render_error():
    with pytest.raises(RenderError, match="ZeroDivisionError"):
        render("{{ 1 / 0 }}", {})


def test_syntax_error_is_a_render_error_with_the_line():
    with pytest.raises(RenderError, match="line 2"):
        render("Hi\n{{ first_name }", {})


def test_template_variables_lists_the_variables_read():
    template = "{% set greeting = 'Hi' %}{{ greeting }} {{ first_name }} {% for i in range(2) %}"
    template += "{{ loop.index }}{{ deal_size }}{% endfor %}"
    assert template_variables(template) == {"first_name", "deal_size"}


def test_misspelt_variable_is_a_near_miss_with_a_suggestion():
    problems = check_template("Hi {{frist_name}},", set())
    assert len(problems) == 1
    problem = problems[0]
    assert problem.kind == "near_miss"
    assert problem.variable == "frist_name"
    assert problem.suggestion == "first_name"
    assert "did you mean first_name?" in problem.message
    assert problem.line == 1


def test_near_miss_of_a_custom_field():
    problems = check_template("Hello\n\n{{ favourite_tool }}", {"favorite_tool"})
    assert [(p.kind, p.suggestion, p.line) for p in problems] == [("near_miss", "favorite_tool", 3)]


def test_unrelated_unknown_variable_is_only_a_warning():
    problems = check_template("{{ deal_size }}", {"favorite_tool"})
    assert [(p.kind, p.variable, p.suggestion) for p in problems] == [
        ("unknown_variable", "deal_size", None)
    ]


def test_known_and_builtin_variables_raise_no_problem():
    template = "{{ first_name }} {{ owner_email }} {{ favorite_tool | default('x') }}"
    assert check_template(template, {"favorite_tool"}) == []


def test_syntax_error_is_reported_with_its_line():
    problems = check_template("Hi {{ first_name }}\n\n{% if x %}never closed", set())
    assert len(problems) == 1
    assert problems[0].kind == "syntax"
    assert problems[0].line == 3


@pytest.mark.parametrize(
    ("previous", "expected"),
    [
        ("Quick question", "Re: Quick question"),
        ("Re: Quick question", "Re: Quick question"),
        ("RE: re: Quick question", "Re: Quick question"),
        ("Aw: Re[2]: Quick question", "Re: Quick question"),
        ("Regarding the demo", "Re: Regarding the demo"),
        ("", "Re:"),
    ],
)
def test_reply_subject_has_exactly_one_re(previous, expected):
    assert reply_subject(previous) == expected


def test_reply_subject_is_idempotent():
    once = reply_subject("Quick question")
    assert reply_subject(reply_subject(once)) == once


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Hello\r\nBcc: evil@x.com", "Hello Bcc: evil@x.com"),
        ("a\nb\rc", "a b c"),
        ("tab\there", "tab here"),
        ("null\x00byte\x7f", "nullbyte"),
        ("line\u2028separator", "line separator"),
        ("  José Müller  ", "José Müller"),
    ],
)
def test_header_safe_removes_line_breaks_and_control_characters(value, expected):
    assert header_safe(value) == expected


@given(st.text())
def test_header_safe_never_leaves_a_line_break(value):
    cleaned = header_safe(value)
    assert len(cleaned.splitlines()) <= 1
    assert not any(unicodedata.category(ch) == "Cc" for ch in cleaned)


def test_variant_split_is_about_even_and_stable():
    variants = [variant_for(i) for i in range(1, 1001)]
    share_a = Counter(variants)["A"] / len(variants)
    assert 0.45 <= share_a <= 0.55
    assert variants == [variant_for(i) for i in range(1, 1001)]
    assert set(variants) == {"A", "B"}


@pytest.mark.parametrize("template, why", [
    ("{% for x in a %}{% for y in a %}{{y}}{% endfor %}{% endfor %}", "nested loops"),
    ("{% for x in a recursive %}{{ loop(x) }}{% endfor %}", "recursive loops"),
    ("{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}", "macros"),
    ("{% for x in range(100000) %}.{% endfor %}", "range longer than"),
])
def test_templates_that_could_stall_a_tick_are_refused(template, why):
    with pytest.raises(RenderError, match=why):
        render(template, {"a": ["1", "2"]})
    if why != "range longer than":
        (problem,) = check_template(template, {"a"})
        assert problem.kind == "syntax" and why in problem.message


def test_a_single_small_loop_still_renders():
    assert render("{% for x in range(3) %}{{ x }}{% endfor %}", {}) == "012"


# The templates that stalled a tick, and the other ways to make a huge result.
LIMIT_BREAKERS = [
    ('{{ "a"|center(80000000) }}', "widths are limited"),
    ('{{ "%50000000s"|format("x") }}', "format widths"),
    ('{{ "%50000000s" % "x" }}', "format widths"),
    ('{{ "%*s" % (50000000, "x") }}', "format widths"),
    ('{{ "%.50000000f" % 1 }}', "format widths"),
    ('{{ "{:>50000000}".format("x") }}', "format widths"),
    ('{{ "{:{w}}".format("x", w=50000000) }}', "format widths"),
    ('{{ "a".ljust(80000000) }}', "widths are limited"),
    ('{{ "a".zfill(80000000) }}', "widths are limited"),
    ('{{ lipsum(n=2000) }}', "lipsum() is not allowed"),
    ('{% for i in range(1000) %}{{ "a" * 100000 }}{% endfor %}', "over 256 KiB"),
    ('{% for c in "a" * 5000 %}.{% endfor %}', "at most 1000 times"),
    ('{{ ("a" * 1000)|replace("a", "b" * 1000) }}', "replace too large"),
    ('{{ ("a" * 1000).replace("a", "b" * 1000) }}', "replace too large"),
    ('{{ ("a" * 100000)|list|join("x" * 10) }}', "join too large"),
    ('{{ ("x" * 10).join(("a" * 100000)|list) }}', "join too large"),
    ('{{ ("w " * 50000)|wordwrap(1, wrapstring="x" * 100) }}', "wordwrap too large"),
    ('{{ ("a\\n" * 1000)|indent("x" * 900) }}', "indent too large"),
    ('{{ [[0] * 100000] * 1000 }}', "'*' too large"),
    ('{{ [1]|batch(100000000, 0)|list }}', "linecount is limited"),
    ('{{ [[1]]|sum(start=[]) }}', "sum adds numbers only"),
    ('{{ [1, [2]]|tojson(indent=100000000) }}', "indent is limited"),
    ('{{ (9 ** 100) ** 100 }}', "'**' too large"),
    ('{% set x = "a" * 100000 %}{% set x = x ~ x %}{% set x = x ~ x %}{% set x = x ~ x %}',
     "kept with set is too large"),
    ('{% set ns = namespace(x="a") %}{% for i in range(40) %}{% set ns.x = ns.x ~ ns.x %}'
     '{% endfor %}', "namespace() is not allowed"),
    ('{% set x %}{% for i in range(1000) %}{{ "a" * 100000 }}{% endfor %}{% endset %}',
     "loops inside set or filter blocks"),
    ('{{ (1).to_bytes(100000000, "big") }}', "int.to_bytes() is not allowed"),
    ('{{ "a\t".expandtabs(100000000) }}', "str.expandtabs() is not allowed"),
    ('{{ "x".encode() }}', "str.encode() is not allowed"),
    ('{% for i in range(1000) %}{% set x = "a" * 100000 %}{% endfor %}', "builds too much"),
    ('{% for i in range(1000) %}{% set x = ("a" * 90000) ~ ("b" * 90000) %}{% endfor %}',
     "builds too much"),
    ("{{ ''.__class__ }}", "unsafe"),
    ('{% set l = [1] %}{{ l.extend(l) }}', "unsafe"),
]


@pytest.mark.parametrize("template, why", LIMIT_BREAKERS, ids=lambda x: x[:40])
def test_a_template_that_would_stall_or_bloat_a_tick_is_refused_before_the_work(template, why):
    tracemalloc.start()
    try:
        with pytest.raises(TemplateRefused, match=re.escape(why)):
            render(template, {"first_name": "Jane"})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * MAX_PART_BYTES  # refused before the huge string, list or number exists


@pytest.mark.parametrize("template, why", LIMIT_BREAKERS, ids=lambda x: x[:40])
def test_validation_reports_every_refused_template(template, why):
    problems = [p for p in check_template("Hi\n" + template, set()) if p.kind != "unknown_variable"]
    assert len(problems) == 1 and why in problems[0].message
    assert problems[0].line == 2


def test_a_rendered_part_stops_at_256_kib_even_in_many_small_pieces():
    exactly = "{% for i in range(1000) %}{{ 'é' * 131 }}{% endfor %}"   # 262,000 UTF-8 bytes
    assert len(render(exactly, {}).encode()) == 262_000 <= MAX_PART_BYTES
    with pytest.raises(TemplateRefused, match="over 256 KiB"):
        render("{% for i in range(1000) %}{{ 'é' * 132 }}{% endfor %}", {})


def test_a_contact_value_over_the_limit_is_refused_at_render_time():
    with pytest.raises(TemplateRefused, match="over 256 KiB"):
        render("{{ notes }}", {"notes": "x" * (MAX_PART_BYTES + 1)})


def test_the_sandbox_check_renders_with_every_field_filled():
    # Refused only when a field has a value: an empty sample would have hidden it.
    template = "{% if deal_size %}{{ deal_size.__class__ }}{% endif %}"
    assert render(template, {}) == ""
    (problem,) = [p for p in check_template(template, {"deal_size"})]
    assert problem.kind == "refused" and "unsafe" in problem.message


def test_an_error_that_real_values_could_avoid_is_left_to_send_time():
    assert check_template("{{ 100 // (seats|int) }}", {"seats"}) == []
    with pytest.raises(RenderError, match="ZeroDivisionError"):
        render("{{ 100 // (seats|int) }}", {"seats": "none"})


def test_everyday_filters_and_methods_still_work():
    template = (
        '{{ first_name|default("there")|title }} {{ "%5.2f"|format(3.14159) }} '
        '{{ items|map("upper")|join(", ") }} {{ "{:>4}|{}".format("x", company_name) }} '
        '{{ company_name|center(12)|trim }} {{ notes|indent(2) }} {{ items|batch(1)|list|length }} '
        '{{ company_name.lower().replace("i", "1") }} {{ [1, 2]|sum }} {{ "ab" * 3 }} '
        '{% set greeting = "Hi " ~ first_name %}{{ greeting }} {% for x in items %}{{ x }}{% endfor %}'
    )
    context = {"first_name": "", "company_name": "Initech", "notes": "a\nb", "items": ["q", "r"]}
    assert render(template, context) == (
        "There  3.14 Q, R    x|Initech Initech a\n  b 2 1n1tech 3 ababab Hi  qr"
    )
