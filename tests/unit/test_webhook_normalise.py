"""Normalisation: every stored forge payload reads as the event its own fields describe.

The fixture test derives each expectation from the payload with plain dict
lookups (nothing is hard-coded per file), then checks the normalised event
against it. The event header comes from the file name, as SOURCES.md defines;
captured ``.headers.txt`` files add the real delivery headers.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from tests.support import SHARED_EXT, shared_ext
from webhook.errors import MalformedPayload
from webhook.events import ZERO_SHA, Provider, parse_provider
from webhook.normalise import normalise

WEBHOOKS = SHARED_EXT / "webhooks"
FIXTURES = sorted(WEBHOOKS.glob("*/*.json")) if WEBHOOKS.is_dir() else []
PR_ACTIONS = ("opened", "synchronize", "reopened", "closed")
GITLAB_EVENT_HEADERS = {
    "push": "Push Hook",
    "tag_push": "Tag Push Hook",
    "merge_request": "Merge Request Hook",
}


def event_headers(path: Path) -> dict[str, str]:
    provider, event = path.parent.name, path.name.split(".")[0]
    headers = {
        "github": {"X-GitHub-Event": event},
        "gitea": {"X-Gitea-Event": event},
        "forgejo": {"X-Forgejo-Event": event},
        "gitlab": {"X-Gitlab-Event": GITLAB_EVENT_HEADERS.get(event, event)},
        "bitbucket": {"X-Event-Key": event.split("-")[0].replace("_", ":", 1)},
    }[provider]
    captured = path.with_name(path.name.removesuffix(".json") + ".headers.txt")
    if captured.exists():
        headers |= parse_captured_headers(captured.read_text())
    return headers


def parse_captured_headers(text: str) -> dict[str, str]:
    """``Name: value`` (Gitea docs) or ``name <TAB> value`` (webhook.site captures)."""
    headers = {}
    for line in text.splitlines():
        separator = "\t" if "\t" in line else ":"
        name, _, value = line.partition(separator)
        headers[name.strip()] = value.strip()
    return headers


def strip_prefix(ref: str, prefix: str) -> str:
    assert ref.startswith(prefix), ref
    return ref[len(prefix) :]


def expect_github(event: str, p: dict[str, Any]) -> dict[str, Any]:
    if event == "ping":
        return {"kind": "ping"}
    if event == "push":
        if p["ref"].startswith("refs/tags/"):
            return {
                "kind": "tag",
                "tag": strip_prefix(p["ref"], "refs/tags/"),
                "after": p["after"],
                "created": p["created"],
                "deleted": p["deleted"],
            }
        return {
            "kind": "push",
            "ref": p["ref"],
            "branch": strip_prefix(p["ref"], "refs/heads/"),
            "before": p["before"],
            "after": p["after"],
            "created": p["created"],
            "deleted": p["deleted"],
            "forced": p["forced"],
            "sender": p["sender"]["login"],
        }
    if event == "pull_request":
        pr = p["pull_request"]
        head_repo = (pr["head"]["repo"] or {}).get("full_name")
        return {
            "kind": "pull_request",
            "action": p["action"] if p["action"] in PR_ACTIONS else "other",
            "provider_action": p["action"],
            "number": p["number"],
            "head_sha": pr["head"]["sha"],
            "head_ref": pr["head"]["ref"],
            "base_ref": pr["base"]["ref"],
            "merged": bool(pr["merged"]),
            "from_fork": head_repo != pr["base"]["repo"]["full_name"],
            "title": pr["title"],
            "sender": p["sender"]["login"],
        }
    return {"kind": "other"}  # create/delete: GitHub also sends the matching push


def expect_gitlab(event: str, p: dict[str, Any]) -> dict[str, Any]:
    if event == "push":
        return {
            "kind": "push",
            "branch": strip_prefix(p["ref"], "refs/heads/"),
            "before": p["before"],
            "after": p["after"],
            "created": p["before"] == ZERO_SHA,
            "deleted": p["after"] == ZERO_SHA,
            "sender": p["user_username"],
        }
    if event == "tag_push":
        return {
            "kind": "tag",
            "tag": strip_prefix(p["ref"], "refs/tags/"),
            "after": p["after"],
            "deleted": p["after"] == ZERO_SHA,
        }
    attributes = p["object_attributes"]
    action = {"open": "opened", "reopen": "reopened", "close": "closed", "merge": "closed"}.get(
        attributes["action"], "other"
    )
    if attributes["action"] == "update" and attributes.get("oldrev"):
        action = "synchronize"  # only updates that pushed commits carry oldrev
    return {
        "kind": "pull_request",
        "action": action,
        "number": attributes["iid"],
        "head_sha": attributes["last_commit"]["id"],
        "head_ref": attributes["source_branch"],
        "base_ref": attributes["target_branch"],
        "merged": attributes["state"] == "merged",
        "from_fork": attributes["source_project_id"] != attributes["target_project_id"],
        "title": attributes["title"],
        "sender": p["user"]["username"],
    }


def expect_gitea(event: str, p: dict[str, Any]) -> dict[str, Any]:
    if event == "push":
        return {
            "kind": "push",
            "branch": strip_prefix(p["ref"], "refs/heads/"),
            "before": p["before"],
            "after": p["after"],
            "created": p["before"] == ZERO_SHA,
            "deleted": False,
            "sender": p["sender"]["login"],
        }
    if event in ("create", "delete"):
        deleted = event == "delete"
        if p["ref_type"] == "tag":
            expected = {"kind": "tag", "tag": p["ref"], "deleted": deleted, "created": not deleted}
            return expected | ({} if deleted else {"after": p["sha"]})
        if deleted:  # Gitea sends no push for a deleted branch
            return {"kind": "push", "branch": p["ref"], "deleted": True, "after": ZERO_SHA}
        return {"kind": "other"}  # a created branch also arrives as a push
    pr = p["pull_request"]
    renamed = {"synchronized": "synchronize"}
    action = renamed.get(p["action"], p["action"])
    head_repo, base_repo = pr["head"].get("repo_id"), pr["base"].get("repo_id")
    return {
        "kind": "pull_request",
        "action": action if action in PR_ACTIONS else "other",
        "number": p["number"],
        "head_sha": pr["head"]["sha"],
        "head_ref": pr["head"]["ref"],
        "base_ref": pr["base"]["ref"],
        "merged": bool(pr.get("merged")),
        "from_fork": head_repo is not None and head_repo != base_repo,
        "title": pr["title"],
        "sender": p["sender"]["login"],
    }


def expect_bitbucket(event: str, p: dict[str, Any]) -> dict[str, Any]:
    if event == "repo:push":
        (change,) = p["push"]["changes"]
        old, new = change["old"], change["new"]
        state = new or old
        expected = {
            "before": old["target"]["hash"] if old else ZERO_SHA,
            "after": new["target"]["hash"] if new else ZERO_SHA,
            "created": change["created"],
            "deleted": change["closed"],
        }
        if state["type"] == "tag":
            return expected | {"kind": "tag", "tag": state["name"]}
        return expected | {"kind": "push", "branch": state["name"], "forced": change["forced"]}
    pr = p["pullrequest"]
    action = {
        "pullrequest:created": "opened",
        "pullrequest:updated": "synchronize",
        "pullrequest:fulfilled": "closed",
        "pullrequest:rejected": "closed",
    }[event]
    return {
        "kind": "pull_request",
        "action": action,
        "number": pr["id"],
        "head_sha": pr["source"]["commit"]["hash"],
        "head_ref": pr["source"]["branch"]["name"],
        "base_ref": pr["destination"]["branch"]["name"],
        "merged": event == "pullrequest:fulfilled",
        "from_fork": pr["source"]["repository"]["full_name"]
        != pr["destination"]["repository"]["full_name"],
        "title": pr["title"],
    }


def expected_repository(provider: str, p: dict[str, Any]) -> tuple[str, str] | None:
    """(full name, one URL the payload gives) where the payload names its repository."""
    if provider == "gitlab":
        return p["project"]["path_with_namespace"], p["project"]["git_http_url"]
    if provider == "bitbucket":
        return p["repository"]["full_name"], p["repository"]["links"]["html"]["href"]
    if "repository" in p:
        return p["repository"]["full_name"], p["repository"]["clone_url"]
    return None


EXPECT = {
    "github": expect_github,
    "gitlab": expect_gitlab,
    "gitea": expect_gitea,
    "forgejo": expect_gitea,
    "bitbucket": expect_bitbucket,
}


@pytest.mark.parametrize(
    "path",
    FIXTURES
    or [pytest.param(None, marks=pytest.mark.skip(reason=f"no webhook fixtures at {WEBHOOKS}"))],
    ids=lambda path: f"{path.parent.name}/{path.name}" if path else "absent",
)
def test_fixture_normalises_to_what_its_payload_says(path: Path) -> None:
    shared_ext("webhooks")
    provider = parse_provider(path.parent.name)
    assert provider is not None
    raw = path.read_bytes()
    payload = json.loads(raw)
    headers = event_headers(path)
    event_header = next(iter(headers.values()))

    event = normalise(provider, headers, raw)

    gitlab_kind = {"Push Hook": "push", "Tag Push Hook": "tag_push"}
    name = gitlab_kind.get(event_header, "merge_request") if provider == "gitlab" else event_header
    expected = EXPECT[provider](name, payload)
    assert {field: getattr(event, field) for field in expected} == expected
    assert event.provider == provider
    assert event.event_name == event_header
    repository = expected_repository(provider, payload)
    if repository is not None:
        assert event.repository.full_name == repository[0]
        assert repository[1] in event.repository.urls
    delivery = {k.lower(): v for k, v in headers.items()}.get(
        "x-github-delivery" if provider == "github" else "x-gitea-delivery"
    )
    assert event.delivery_id == (delivery or "sha256:" + hashlib.sha256(raw).hexdigest())


# Synthetic cases: the edges no stored fixture shows.

SHA_A, SHA_B = "a" * 40, "b" * 40


def github_push(ref: str = "refs/heads/main") -> dict[str, Any]:
    return {
        "ref": ref,
        "before": SHA_A,
        "after": SHA_B,
        "repository": {
            "full_name": "team/app",
            "clone_url": "https://git.example.com/team/app.git",
        },
        "sender": {"login": "dev"},
    }


def test_form_encoded_body_is_read_from_its_payload_field() -> None:
    from urllib.parse import urlencode

    body = urlencode({"payload": json.dumps(github_push())}).encode()
    headers = {"X-GitHub-Event": "push", "Content-Type": "application/x-www-form-urlencoded"}

    event = normalise("github", headers, body)

    assert (event.kind, event.branch, event.after) == ("push", "main", SHA_B)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "malformed JSON"),
        (b"\xff\xfe", "malformed JSON"),
        (b"[1, 2]", "JSON body is not an object"),
        (b"", "malformed JSON"),
        (json.dumps({"after": SHA_B}).encode(), "missing field ref"),
        (json.dumps({"ref": "refs/heads/main", "after": 5}).encode(), "missing field after"),
    ],
)
def test_unreadable_body_is_malformed(body: bytes, reason: str) -> None:
    with pytest.raises(MalformedPayload) as caught:
        normalise("github", {"X-GitHub-Event": "push"}, body)
    assert caught.value.reason == reason
    assert caught.value.status_code == 400


def test_decoded_object_normalises_like_its_bytes() -> None:
    from_dict = normalise("github", {"X-GitHub-Event": "push"}, github_push())
    from_bytes = normalise("github", {"X-GitHub-Event": "push"}, json.dumps(github_push()).encode())
    assert from_dict.branch == from_bytes.branch == "main"
    assert from_dict.delivery_id.startswith("sha256:")


@pytest.mark.parametrize(
    ("provider", "headers", "expected"),
    [
        ("github", {"X-GitHub-Delivery": "gh-1"}, "gh-1"),
        ("github", {"x-github-delivery": "gh-2"}, "gh-2"),
        ("gitea", {"X-Gitea-Delivery": "gt-1"}, "gt-1"),
        ("forgejo", {"X-Forgejo-Delivery": "fj-1", "X-Gitea-Delivery": "gt-1"}, "fj-1"),
        ("forgejo", {"X-Gitea-Delivery": "gt-2"}, "gt-2"),
        ("gitlab", {"X-Gitlab-Event-UUID": "gl-1"}, "gl-1"),
        ("gitlab", {"Idempotency-Key": "gl-key", "X-Gitlab-Event-UUID": "gl-2"}, "gl-key"),
        ("bitbucket", {"X-Request-UUID": "bb-1", "X-Hook-UUID": "hook"}, "bb-1"),
        ("generic", {"X-Railyard-Delivery": "ry-1"}, "ry-1"),
    ],
)
def test_delivery_id_comes_from_the_providers_header(
    provider: Provider, headers: dict[str, str], expected: str
) -> None:
    event = normalise(provider, headers | {"X-Railyard-Event": "ping"}, b"{}")
    assert event.delivery_id == expected


def test_gitlab_webhook_uuid_names_the_hook_not_the_delivery() -> None:
    headers = {"X-Gitlab-Event": "Push Hook", "X-Gitlab-Webhook-UUID": "same-for-every-delivery"}
    first = normalise("gitlab", headers, b'{"object_kind": "note"}')
    second = normalise("gitlab", headers, b'{"object_kind": "note", "id": 2}')
    assert first.delivery_id != second.delivery_id


def test_oversized_or_unprintable_delivery_header_is_hashed() -> None:
    long = normalise("github", {"X-GitHub-Delivery": "x" * 5000, "X-GitHub-Event": "ping"}, b"{}")
    odd = normalise("github", {"X-GitHub-Delivery": "a\nb", "X-GitHub-Event": "ping"}, b"{}")
    assert long.delivery_id.startswith("sha256:") and len(long.delivery_id) < 100
    assert odd.delivery_id.startswith("sha256:")


def bitbucket_change(kind: str, name: str, sha: str) -> dict[str, Any]:
    old = {"type": kind, "name": name, "target": {"hash": SHA_A}}
    new = {"type": kind, "name": name, "target": {"hash": sha}}
    return {"old": old, "new": new, "created": False, "closed": False, "forced": False}


@pytest.mark.parametrize(("tracked", "branch"), [("main", "main"), ("dev", "dev"), ("x", "docs")])
def test_bitbucket_push_of_several_refs_reports_the_tracked_branch(
    tracked: str, branch: str
) -> None:
    changes = [
        bitbucket_change("tag", "v1", "1" * 40),
        bitbucket_change("branch", "docs", "2" * 40),
        bitbucket_change("branch", "main", "3" * 40),
        bitbucket_change("branch", "dev", "4" * 40),
    ]
    body = json.dumps({"push": {"changes": changes[1:] if tracked == "x" else changes}})

    event = normalise(
        "bitbucket", {"X-Event-Key": "repo:push"}, body.encode(), tracked_branch=tracked
    )

    assert (event.kind, event.branch) == ("push", branch)


@pytest.mark.parametrize(
    ("headers", "body", "expected"),
    [
        ({}, {"ref": "refs/heads/main", "after": SHA_B}, ("push", "main", "")),
        ({}, {"event": "push", "branch": "main", "after": SHA_B}, ("push", "main", "")),
        ({"X-Railyard-Event": "ping"}, {}, ("ping", "", "")),
        ({}, {"event": "ping"}, ("ping", "", "")),
        ({}, {"ref": "refs/tags/v1", "after": SHA_B}, ("tag", "", "")),
        (
            {"X-Railyard-Event": "pull_request"},
            {"action": "opened", "number": 4, "head_sha": SHA_B, "head_ref": "f"},
            ("pull_request", "", "opened"),
        ),
        (
            {},
            {"event": "pull_request", "action": "labeled", "number": 4, "head_sha": SHA_B},
            ("pull_request", "", "other"),
        ),
        ({}, {"event": "deploy-everything"}, ("other", "", "")),
    ],
)
def test_generic_format(
    headers: dict[str, str], body: dict[str, Any], expected: tuple[str, str, str]
) -> None:
    event = normalise("generic", headers, json.dumps(body).encode())
    assert (
        event.kind,
        event.branch,
        event.action if event.kind == "pull_request" else "",
    ) == expected


def test_generic_repository_may_be_a_string_or_an_object() -> None:
    url = "https://git.example.com/team/app.git"
    as_string = normalise("generic", {}, {"branch": "main", "after": SHA_B, "repository": url})
    as_object = normalise(
        "generic",
        {},
        {"branch": "main", "after": SHA_B, "repository": {"full_name": "t/a", "url": url}},
    )
    assert as_string.repository.urls == as_object.repository.urls == (url,)
    assert as_object.repository.full_name == "t/a"


def test_github_ref_outside_heads_and_tags_is_other() -> None:
    event = normalise("github", {"X-GitHub-Event": "push"}, github_push("refs/notes/commits"))
    assert event.kind == "other"


def test_github_pull_request_whose_fork_was_deleted_counts_as_a_fork() -> None:
    body = {
        "action": "synchronize",
        "number": 9,
        "pull_request": {
            "head": {"sha": SHA_B, "ref": "f", "repo": None},
            "base": {"sha": SHA_A, "ref": "main", "repo": {"id": 1, "full_name": "team/app"}},
        },
    }
    event = normalise("github", {"X-GitHub-Event": "pull_request"}, body)
    assert event.from_fork and event.number == 9


def test_event_revision_is_the_commit_to_deploy() -> None:
    push = normalise("github", {"X-GitHub-Event": "push"}, github_push())
    deleted = normalise("github", {"X-GitHub-Event": "push"}, github_push() | {"after": ZERO_SHA})
    assert (push.revision, deleted.revision) == (SHA_B, "")
    assert push.to_dict()["repository"]["full_name"] == "team/app"
