"""Reading paas.yaml safely: positions in errors, duplicate keys, alias bombs, odd input."""

from __future__ import annotations

import time

import pytest

from controller.errors import ManifestError, ManifestIssue
from controller.spec import parse_manifest


def issues_of(text: str | bytes, filename: str = "paas.yaml") -> list[ManifestIssue]:
    with pytest.raises(ManifestError) as caught:
        parse_manifest(text, filename=filename)
    return caught.value.issues


def test_the_error_names_file_line_column_and_field() -> None:
    text = (
        "version: 1\n"
        "services:\n"
        "  web:\n"
        "    image: nginx\n"
        "    port: 8080\n"
        "    healthcheck:\n"
        "      interval: ten\n"
    )
    (issue,) = issues_of(text)
    assert str(issue) == (
        'paas.yaml:7:17: services.web.healthcheck.interval: expected a duration like "10s", '
        'got "ten"'
    )


POSITIONS = [
    # (text, path, line, column): hand-counted, 1-based.
    ("version: 1\nservices:\n  web:\n    image: nginx\n    prot: 80\n", "services.web.prot", 5, 5),
    ("version: 1\nservices:\n  web: {image: nginx, port: 0}\n", "services.web.port", 3, 29),
    (
        "version: 1\nservices:\n  web:\n    image: nginx\n    routes:\n      - host: A.io\n",
        "services.web.routes[0].host",
        6,
        15,
    ),
    ("version: 1\nservices:\n  web:\n    port: 80\n", "services.web", 4, 5),
    ("version: 1\nservices:\n  Web:\n    image: nginx\n", "services.Web", 3, 3),
    ("version: 3\nservices:\n  web: {image: nginx}\n", "version", 1, 10),
    ("version: 1\nservices:\n  web: {image: nginx}\n  web: {image: nginx}\n", "services.web", 4, 3),
    (
        "version: 1\nservices:\n  web:\n    image: nginx\n    depends_on:\n      - db\n",
        "services.web.depends_on[0]",
        6,
        9,
    ),
    (
        "version: 1\nservices:\n  web:\n    image: nginx\n    env:\n      A: ~\n",
        "services.web.env.A",
        6,
        10,
    ),
    (
        "version: 1\nservices:\n  web:\n    image: nginx\npreviews:\n  ttl: 5\n",
        "previews.ttl",
        6,
        8,
    ),
]


@pytest.mark.parametrize(("text", "path", "line", "column"), POSITIONS)
def test_positions_point_at_the_offending_value_or_key(
    text: str, path: str, line: int, column: int
) -> None:
    matching = [issue for issue in issues_of(text) if issue.path == path]
    assert matching, [str(issue) for issue in issues_of(text)]
    assert (matching[0].line, matching[0].column) == (line, column)


def test_the_filename_given_is_the_one_reported() -> None:
    (issue,) = issues_of("version: 9\nservices: {a: {image: x}}\n", filename="deploy/paas.yaml")
    assert str(issue).startswith("deploy/paas.yaml:1:10: version:")


def test_a_yaml_syntax_error_names_its_line() -> None:
    (issue,) = issues_of("version: 1\nservices:\n  web: {image: nginx\n")
    assert issue.line is not None and issue.line >= 3
    assert issue.message.startswith("not valid YAML")


def test_duplicate_keys_name_both_lines() -> None:
    (issue,) = issues_of("version: 1\nservices:\n  web:\n    image: a\n    image: b\n")
    assert (issue.path, issue.line) == ("services.web.image", 5)
    assert "first written on line 4" in issue.message


BILLION_LAUGHS = "\n".join(
    [
        'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
        *(
            f"{chr(98 + i)}: &{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 9) + "]"
            for i in range(8)
        ),
    ]
)


def test_a_billion_laughs_document_is_refused_quickly() -> None:
    started = time.perf_counter()
    (issue,) = issues_of(BILLION_LAUGHS)
    elapsed = time.perf_counter() - started
    assert "expands to more than" in issue.message
    assert issue.line is not None
    assert elapsed < 0.5


def test_a_quadratic_blowup_under_one_mebibyte_is_refused() -> None:
    anchor = "x: &x [" + ",".join(["1"] * 2000) + "]\n"
    users = "y: [" + ",".join(["*x"] * 2000) + "]\n"
    started = time.perf_counter()
    (issue,) = issues_of(anchor + users)
    assert "expands to more than" in issue.message
    assert time.perf_counter() - started < 0.5


def test_a_recursive_alias_is_refused() -> None:
    (issue,) = issues_of("version: 1\nservices: &s\n  web: *s\n")
    assert "refers to a node that contains it" in issue.message


def test_a_file_over_one_mebibyte_is_refused_before_parsing() -> None:
    text = "version: 1\n# " + "x" * (1024 * 1024) + "\n"
    (issue,) = issues_of(text)
    assert "limit is 1 MiB" in issue.message


def test_deep_nesting_is_refused_without_a_traceback() -> None:
    (issue,) = issues_of("a: " + "[" * 5000 + "]" * 5000 + "\n")
    assert "nested" in issue.message


def test_moderate_nesting_is_reported_as_too_deep() -> None:
    issues = issues_of("version: 1\nservices: " + "[" * 80 + "]" * 80 + "\n")
    assert any("nested more than 64 levels" in issue.message for issue in issues)


def test_invalid_utf8_is_refused() -> None:
    (issue,) = issues_of(b"version: 1\nservices:\n  web: {image: \xff}\n")
    assert "not UTF-8" in issue.message


def test_control_characters_are_a_yaml_error() -> None:
    (issue,) = issues_of("version: 1\x07\n")
    assert issue.message.startswith("not valid YAML")


def test_an_alias_used_a_few_times_is_fine() -> None:
    text = (
        "version: 1\n"
        "services:\n"
        "  web: &svc {image: nginx, env: {A: '1'}}\n"
        "  api: *svc\n"
        "  worker: *svc\n"
    )
    assert set(parse_manifest(text).service_specs()) == {"web", "api", "worker"}
