"""The small readers behind manifest fields: durations, sizes, references, slugs."""

from __future__ import annotations

import re

import pytest

from controller.spec.durations import format_duration, parse_duration
from controller.spec.interpolation import Reference, find_references, substitute
from controller.spec.render import branch_slug
from controller.spec.sizes import format_size, parse_docker_bytes, parse_size


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0", 0.0),
        ("500ms", 0.5),
        ("1s", 1.0),
        ("10s", 10.0),
        ("1.5s", 1.5),
        ("2m", 120.0),
        ("1h", 3600.0),
        ("7d", 604800.0),
        ("1m30s", 90.0),
        ("1h1m1s", 3661.0),
        ("1s500ms", 1.5),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "text", ["", "ten", "10", "10 s", " 3s", "3s\n", "-1s", "1.s", "s", "10sec", "1y", "1S"]
)
def test_bad_durations_say_what_was_expected(text: str) -> None:
    with pytest.raises(ValueError, match='expected a duration like "10s"'):
        parse_duration(text)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0"), (0.5, "500ms"), (2, "2s"), (90, "90s"), (120, "2m"), (86400, "1d")],
)
def test_durations_are_shown_in_their_shortest_exact_form(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("1024", 1024),
        ("4Mi", 4 * 2**20),
        ("256Mi", 256 * 2**20),
        ("1Gi", 2**30),
        ("1.5Gi", 3 * 2**29),
        ("64Ki", 64 * 1024),
        ("512M", 512 * 10**6),
        ("1G", 10**9),
        ("100k", 100_000),
        ("100K", 100_000),
        ("1Ti", 2**40),
    ],
)
def test_sizes(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize(("text", "hint"), [("512m", "512Mi"), ("1g", "1Gi"), ("2gb", "2Gi")])
def test_lowercase_sizes_are_ambiguous_and_say_both_spellings(text: str, hint: str) -> None:
    with pytest.raises(ValueError, match=f"ambiguous: write {hint}"):
        parse_size(text)


@pytest.mark.parametrize("text", ["", "lots", "1 Gi", " 1Gi", "1Gi\n", "-1Mi", "1Mb", "1MiB", "Mi"])
def test_bad_sizes(text: str) -> None:
    with pytest.raises(ValueError, match="size"):
        parse_size(text)


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("512m", 512 * 2**20),
        ("1g", 2**30),
        ("1gb", 2**30),
        ("64M", 64 * 2**20),
        ("100", 100),
        ("2k", 2048),
    ],
)
def test_compose_sizes_follow_docker(text: str, size: int) -> None:
    assert parse_docker_bytes(text) == size


@pytest.mark.parametrize(("size", "text"), [(2**30, "1Gi"), (3 * 2**20, "3Mi"), (1000, "1000")])
def test_sizes_are_shown_in_binary_units(size: int, text: str) -> None:
    assert format_size(size) == text


@pytest.mark.parametrize(
    ("value", "found"),
    [
        ("plain", []),
        ("${{ secrets.DB }}", [("secrets", "DB", None)]),
        ("${{secrets.DB}}", [("secrets", "DB", None)]),
        (
            "a${{ railyard.pr }}b${{ railyard.revision }}",
            [("railyard", "pr", None), ("railyard", "revision", None)],
        ),
        ("${{ services.api.url }}/v1", [("services", "api", "url")]),
        ("${{ services.api.internal_url }}", [("services", "api", "internal_url")]),
        ("${{ services.api.host }}", [("services", "api", "host")]),
        ("$DB and ${DB} and {{ x }}", []),
    ],
)
def test_references_are_found(value: str, found: list[tuple[str, str, str | None]]) -> None:
    assert [(r.namespace, r.name, r.attribute) for r in find_references(value)] == found


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("${{ secrets.DB", "not closed"),
        ("${{ env.DB }}", "unknown reference"),
        ("${{ secret.DB }}", "did you mean ${{ secrets.DB }}?"),
        ("${{ service.api.url }}", "did you mean ${{ services.api.url }}?"),
        ("${{ secrets.DB.x }}", "secret is named"),
        ("${{ secrets.9DB }}", "secret is named"),
        ("${{ railyard.secret }}", "railyard.* is one of"),
        ("${{ services.api }}", "services.<name>.url"),
        ("${{ services.api.port }}", "services.<name>.url"),
        ("${{}}", "unknown reference"),
    ],
)
def test_bad_references_say_what_is_allowed(value: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        find_references(value)


def test_substitution_does_not_rescan_what_it_inserted() -> None:
    def resolve(reference: Reference) -> str:
        return "${{ secrets.OTHER }}" if reference.name == "A" else "x"

    assert substitute("<${{ secrets.A }}>", resolve) == "<${{ secrets.OTHER }}>"


def test_a_reference_prints_in_canonical_form() -> None:
    (reference,) = find_references("${{services.api.url}}")
    assert str(reference) == "${{ services.api.url }}"


@pytest.mark.parametrize(
    ("branch", "slug"),
    [
        ("main", "main"),
        ("feature/Add_Login", "feature-add-login"),
        ("--weird--", "weird"),
        ("dependabot/npm_and_yarn/lodash-4.17.21", "dependabot-npm-and-yarn-lodash"),
        ("ÜBER", "ber"),
    ],
)
def test_branch_slugs_fit_a_dns_label(branch: str, slug: str) -> None:
    assert branch_slug(branch) == slug
    assert len(branch_slug(branch)) <= 30
