"""The Git adapter of the Source port, and the only module that imports pygit2.

Every remote URL gets one bare repository in the cache,
``cache_dir/<sha256(url)[:16]>.git``. ``resolve`` fetches exactly one branch
into ``refs/remotes/origin/<branch>``; ``read_file``, ``tree_id`` and
``archive`` only ever read that cache, so they need no network and see a
commit exactly as it was fetched. ``remote_head`` asks the remote for its refs
and fetches nothing: it is what the poller calls every minute.

Concurrency: a fetch holds an exclusive ``flock`` on ``<cache>.lock`` for as
long as it runs, which serialises fetches of one repository across threads
and worker processes alike. Reads take no lock: git writes objects before it
moves a ref.

Timeouts: network operations run in a small thread pool of their own and are
awaited with ``asyncio.wait_for``. libgit2 cannot be interrupted from outside,
so when the deadline passes the caller gets ``SourceUnavailable`` at once while
the thread may keep running for a while. It stops at its next progress
callback (which checks an "abandoned" flag) or when libgit2's socket timeouts
expire; those are process-wide settings, which ``GitSource`` lowers to its own
timeout (not below five seconds). Until then an abandoned fetch still holds
the lock, so it can never collide with the next fetch of the same repository.
Local remotes (a path or ``file://``) have no network but take the same path.

Credentials come from the URL (``https://user:token@host/repo.git``) or from
the ``credentials`` callable, and are offered once: a rejection is final.
They never reach a message: every error names the URL through
``redact_url``, the remote's URL stored in the cache's config is redacted, and
libgit2's own text is scrubbed before it is quoted.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import io
import logging
import re
import tarfile
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath
from typing import TypeVar
from urllib.parse import unquote, urlsplit

import pygit2
from pygit2.enums import CredentialType, FileMode
from pygit2.remotes import TransferProgress

from controller.errors import RailyardError, SourceError, SourceUnavailable
from controller.source.base import SshKey

log = logging.getLogger(__name__)

T = TypeVar("T")

Credentials = Callable[[str], tuple[str, str] | SshKey | None]
"""Given a repository URL, the (username, password or token) or the SSH key to offer."""

MAX_ARCHIVE_BYTES = 512 * 1024 * 1024
NETWORK_THREADS = 4
MIN_SOCKET_WAIT_SECONDS = 5.0

_USERINFO = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^/\s]*)@")
_COMMIT_ID = re.compile(r"[0-9a-fA-F]{4,64}")
_AUTH_FAILURES = ("authentication", "status code: 401", "status code: 403")
_MISSING_REPOSITORY = (
    "repository not found",
    "no such repository",
    "could not find repository",
    "failed to resolve path",
    "not exported",
    "status code: 404",
    "does not appear to be a git repository",
)


def redact_url(url: str) -> str:
    """``url`` (or any text holding URLs) with the secret part of each user-info masked.

    ``https://user:token@host/x`` becomes ``https://user:***@host/x``; a lone user
    part is masked too (``https://<token>@host/x``) except for ``ssh://``, where it
    is only a login name.
    """
    return _USERINFO.sub(_mask_userinfo, url)


def _mask_userinfo(match: re.Match[str]) -> str:
    scheme, userinfo = match["scheme"], match["userinfo"]
    user, colon, _ = userinfo.partition(":")
    if colon:
        return f"{scheme}{user}:***@"
    if scheme.lower() == "ssh://":
        return match[0]
    return f"{scheme}***@"


def _scrub(text: str, url: str) -> str:
    """Text from libgit2 with every trace of the URL's credentials removed."""
    text = redact_url(text)
    for secret in _url_secrets(url):
        text = text.replace(secret, "***")
    return text


def _url_secrets(url: str) -> list[str]:
    parts = urlsplit(url)
    secrets = [parts.password] if parts.password else []
    if parts.username and parts.password is None and parts.scheme not in ("ssh", ""):
        secrets.append(parts.username)
    return [s for value in secrets for s in {value, unquote(value)} if s]


def _userpass_from_url(url: str) -> tuple[str, str] | None:
    parts = urlsplit(url)
    if not parts.username or parts.scheme not in ("http", "https"):
        return None
    return unquote(parts.username), unquote(parts.password or "")


class _AuthRejected(Exception):
    """No credentials to offer, or the remote refused the ones offered."""


class _Abandoned(Exception):
    """The caller stopped waiting (timeout or cancellation); stop working."""


class _Callbacks(pygit2.RemoteCallbacks):
    """One connection's callbacks: credentials offered once, and the abort switch."""

    def __init__(self, url: str, provider: Credentials | None, abandoned: threading.Event):
        super().__init__()
        self._url = url
        self._provider = provider
        self._abandoned = abandoned
        self._offered = False

    def credentials(
        self, url: str, username_from_url: str | None, allowed_types: CredentialType
    ) -> pygit2.UserPass | pygit2.KeypairFromAgent | pygit2.KeypairFromMemory:
        if self._offered:
            raise _AuthRejected
        self._offered = True
        provided = self._provider(self._url) if self._provider is not None else None
        if allowed_types & CredentialType.USERPASS_PLAINTEXT:
            pair = _userpass_from_url(self._url)
            if pair is None and isinstance(provided, tuple):
                pair = provided
            if pair is not None:
                return pygit2.UserPass(*pair)
        if allowed_types & CredentialType.SSH_KEY:
            if isinstance(provided, SshKey):
                user = username_from_url or provided.username
                return pygit2.KeypairFromMemory(
                    user, None, provided.private_key, provided.passphrase
                )
            return pygit2.KeypairFromAgent(username_from_url or "git")
        raise _AuthRejected

    def sideband_progress(self, string: str) -> None:
        self._stop_if_abandoned()

    def transfer_progress(self, stats: TransferProgress) -> None:
        self._stop_if_abandoned()

    def _stop_if_abandoned(self) -> None:
        if self._abandoned.is_set():
            raise _Abandoned


class GitSource:
    """The Source port over real Git remotes, with a local bare-repository cache.

    The cache is keyed by the URL exactly as given, credentials included, so a
    commit fetched with one tenant's token is never readable through another URL.
    """

    def __init__(
        self,
        cache_dir: Path,
        *,
        timeout_seconds: float = 30.0,
        credentials: Credentials | None = None,
        max_archive_bytes: int = MAX_ARCHIVE_BYTES,
    ) -> None:
        self._cache_dir = Path(cache_dir)
        self._timeout = timeout_seconds
        self._credentials = credentials
        self._max_archive_bytes = max_archive_bytes
        self._executor = ThreadPoolExecutor(NETWORK_THREADS, thread_name_prefix="railyard-git")
        _bound_libgit2_socket_waits(timeout_seconds)

    def cache_path(self, repo_url: str) -> Path:
        """Where the bare repository caching ``repo_url`` lives."""
        key = hashlib.sha256(repo_url.encode()).hexdigest()[:16]
        return self._cache_dir / f"{key}.git"

    def close(self) -> None:
        """Stop accepting network work; threads still running finish on their own."""
        self._executor.shutdown(wait=False, cancel_futures=True)

    # -- network ---------------------------------------------------------------

    async def remote_head(self, repo_url: str, branch: str) -> str | None:
        ref = _branch_ref(branch)
        heads = await self._network(
            repo_url, lambda abandoned: self._list_heads(repo_url, abandoned)
        )
        return heads.get(ref)

    async def resolve(self, repo_url: str, branch: str) -> str:
        _branch_ref(branch)
        return await self._network(
            repo_url, lambda abandoned: self._fetch_branch(repo_url, branch, abandoned)
        )

    async def _network(self, url: str, operation: Callable[[threading.Event], T]) -> T:
        abandoned = threading.Event()
        future = asyncio.get_running_loop().run_in_executor(self._executor, operation, abandoned)
        try:
            return await asyncio.wait_for(future, self._timeout)
        except TimeoutError as exc:
            log.warning(
                "git: %s gave no answer within %gs; its thread finishes in the background",
                redact_url(url),
                self._timeout,
            )
            raise SourceUnavailable(
                f"remote unreachable: {redact_url(url)} (no answer within {self._timeout:g}s)"
            ) from exc
        except (pygit2.GitError, _AuthRejected) as exc:
            mapped = _remote_error(exc, url)
            # A foreign message that had to be scrubbed must not survive as the cause.
            raise mapped from (exc if _scrub(str(exc), url) == str(exc) else None)
        except OSError as exc:
            raise SourceUnavailable(
                f"git cache unusable for {redact_url(url)}: {exc.strerror or exc}"
            ) from exc
        finally:
            abandoned.set()

    def _list_heads(self, url: str, abandoned: threading.Event) -> dict[str, str]:
        path = self.cache_path(url)
        if (path / "HEAD").exists():
            # No lock: listing refs writes nothing, and must not wait behind a long fetch.
            repo = pygit2.Repository(str(path))
        else:
            with self._locked(url):
                repo = self._ensure_cache(url)
        remote = repo.remotes.create_anonymous(url)
        heads = remote.list_heads(callbacks=self._callbacks(url, abandoned))
        return {head.name: str(head.oid) for head in heads if head.name}

    def _fetch_branch(self, url: str, branch: str, abandoned: threading.Event) -> str:
        with self._locked(url):
            if abandoned.is_set():
                raise _Abandoned
            repo = self._ensure_cache(url)
            remote = repo.remotes.create_anonymous(url)
            heads = remote.list_heads(callbacks=self._callbacks(url, abandoned))
            advertised = {head.name: head.oid for head in heads}.get(_branch_ref(branch))
            local_ref = f"refs/remotes/origin/{branch}"
            if advertised is None:
                if local_ref in repo.references:
                    repo.references.delete(local_ref)
                raise SourceError(f"branch '{branch}' not found in {redact_url(url)}")
            if advertised in repo:
                # The commit is here already (e.g. a force-push back): no transfer.
                repo.references.create(local_ref, advertised, force=True)
            else:
                remote.fetch(
                    [f"+{_branch_ref(branch)}:{local_ref}"],
                    callbacks=self._callbacks(url, abandoned),
                )
            reference = repo.references.get(local_ref)
            if reference is None:
                raise SourceError(f"branch '{branch}' not found in {redact_url(url)}")
            return str(reference.resolve().target)

    def _callbacks(self, url: str, abandoned: threading.Event) -> _Callbacks:
        return _Callbacks(url, self._credentials, abandoned)

    @contextlib.contextmanager
    def _locked(self, url: str) -> Iterator[None]:
        self._cache_dir.mkdir(parents=True, exist_ok=True)
        with self.cache_path(url).with_suffix(".lock").open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _ensure_cache(self, url: str) -> pygit2.Repository:
        """The cache repository, created on first use. The caller holds the lock."""
        path = self.cache_path(url)
        if (path / "HEAD").exists():
            return pygit2.Repository(str(path))
        repo = pygit2.init_repository(str(path), bare=True)
        if "origin" not in repo.remotes.names():
            # For people inspecting the cache; fetches use the full URL in memory only.
            repo.remotes.create("origin", redact_url(url))
        return repo

    # -- reads from the cache --------------------------------------------------

    async def read_file(self, repo_url: str, revision: str, path: str) -> bytes | None:
        return await asyncio.to_thread(self._read_file, repo_url, revision, path)

    async def tree_id(self, repo_url: str, revision: str, path: str) -> str:
        return await asyncio.to_thread(self._tree_id, repo_url, revision, path)

    async def archive(self, repo_url: str, revision: str, path: str) -> bytes:
        return await asyncio.to_thread(self._archive, repo_url, revision, path)

    def _read_file(self, url: str, revision: str, path: str) -> bytes | None:
        _, commit = self._commit(url, revision)
        relative = _relative_path(path)
        try:
            entry = commit.tree[relative] if relative else commit.tree
        except KeyError:
            return None
        if isinstance(entry, pygit2.Blob) and entry.filemode != FileMode.LINK:
            return entry.data
        kind = "a directory" if isinstance(entry, pygit2.Tree) else "not a regular file"
        raise SourceError(f"'{relative or '.'}' is {kind} at {revision[:12]} in {redact_url(url)}")

    def _tree_id(self, url: str, revision: str, path: str) -> str:
        _, tree = self._directory(url, revision, path)
        return str(tree.id)

    def _archive(self, url: str, revision: str, path: str) -> bytes:
        repo, tree = self._directory(url, revision, path)
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for name, entry in _walk(tree, ""):
                if entry.filemode in (FileMode.BLOB, FileMode.BLOB_EXECUTABLE):
                    _, size = repo.odb.read_header(entry.id)
                    if buffer.tell() + size > self._max_archive_bytes:
                        raise SourceError(
                            f"build context '{_relative_path(path) or '.'}' at {revision[:12]} "
                            f"is larger than {self._max_archive_bytes // (1024 * 1024)} MiB"
                        )
                member, content = _tar_member(repo, name, entry)
                tar.addfile(member, io.BytesIO(content) if content is not None else None)
        return buffer.getvalue()

    def _commit(self, url: str, revision: str) -> tuple[pygit2.Repository, pygit2.Commit]:
        not_cached = SourceError(
            f"revision {revision[:12]} of {redact_url(url)} is not in the cache; resolve first"
        )
        if not _COMMIT_ID.fullmatch(revision):
            raise SourceError(f"not a commit id: {revision!r}")
        path = self.cache_path(url)
        if not (path / "HEAD").exists():
            raise not_cached
        try:
            repo = pygit2.Repository(str(path))
            return repo, repo.revparse_single(revision).peel(pygit2.Commit)
        except (KeyError, ValueError, pygit2.GitError) as exc:
            raise not_cached from exc

    def _directory(
        self, url: str, revision: str, path: str
    ) -> tuple[pygit2.Repository, pygit2.Tree]:
        repo, commit = self._commit(url, revision)
        relative = _relative_path(path)
        if not relative:
            return repo, commit.tree
        try:
            entry = commit.tree[relative]
        except KeyError as exc:
            raise SourceError(
                f"directory '{relative}' not found at {revision[:12]} in {redact_url(url)}"
            ) from exc
        if not isinstance(entry, pygit2.Tree):
            raise SourceError(
                f"'{relative}' is not a directory at {revision[:12]} in {redact_url(url)}"
            )
        return repo, entry


def _walk(tree: pygit2.Tree, prefix: str) -> Iterator[tuple[str, pygit2.Object]]:
    """Every entry under ``tree``, depth first, sorted by name: a stable tar order."""
    for entry in sorted(tree, key=lambda item: item.name or ""):
        name = entry.name or ""
        if name in ("", ".", "..") or "/" in name:
            raise SourceError(f"unsafe entry name {name!r} in tree {tree.id}")
        yield prefix + name, entry
        if isinstance(entry, pygit2.Tree):
            yield from _walk(entry, f"{prefix}{name}/")


def _tar_member(
    repo: pygit2.Repository, name: str, entry: pygit2.Object
) -> tuple[tarfile.TarInfo, bytes | None]:
    """The tar header of one tree entry (fixed owner and mtime), and a file's bytes."""
    member = tarfile.TarInfo(name)
    member.mtime = 0
    member.uid = member.gid = 0
    member.uname = member.gname = ""
    if entry.filemode in (FileMode.TREE, FileMode.COMMIT):
        # A submodule (COMMIT) becomes an empty directory, as with `git archive`.
        member.type, member.mode = tarfile.DIRTYPE, 0o755
        return member, None
    blob = repo[entry.id].peel(pygit2.Blob)
    if entry.filemode == FileMode.LINK:
        # Stored as a link and never followed here: Docker resolves it within the context.
        member.type, member.mode = tarfile.SYMTYPE, 0o777
        member.linkname = blob.data.decode("utf-8", "surrogateescape")
        return member, None
    member.size = blob.size
    member.mode = 0o755 if entry.filemode == FileMode.BLOB_EXECUTABLE else 0o644
    return member, blob.data


def _branch_ref(branch: str) -> str:
    ref = f"refs/heads/{branch}"
    if not branch or not pygit2.reference_is_valid_name(ref):
        raise SourceError(f"invalid branch name: {branch!r}")
    return ref


def _relative_path(path: str) -> str:
    """``path`` inside the repository, normalised: '' is the root."""
    parts = [part for part in PurePosixPath(path.strip()).parts if part not in ("/", ".")]
    if ".." in parts:
        raise SourceError(f"path {path!r} points outside the repository")
    return "/".join(parts)


def _remote_error(exc: Exception, url: str) -> RailyardError:
    where = redact_url(url)
    text = str(exc).lower()
    if isinstance(exc, _AuthRejected | pygit2.AuthError) or any(
        marker in text for marker in _AUTH_FAILURES
    ):
        return SourceError(f"authentication failed for {where}")
    if "unsupported url protocol" in text:
        return SourceError(f"not a repository URL or path: {where}")
    if any(marker in text for marker in _MISSING_REPOSITORY):
        return SourceError(f"repository not found: {where} ({_scrub(str(exc), url)})")
    return SourceUnavailable(f"remote unreachable: {where} ({_scrub(str(exc), url)})")


def _bound_libgit2_socket_waits(timeout_seconds: float) -> None:
    """Lower libgit2's process-wide connect and read timeouts to ``timeout_seconds``
    (never below ``MIN_SOCKET_WAIT_SECONDS``, so that one impatient instance does not
    make every other one fail), so that a thread abandoned by ``wait_for`` ends soon."""
    milliseconds = int(max(timeout_seconds, MIN_SOCKET_WAIT_SECONDS) * 1000)
    settings = pygit2.settings
    if not 0 < settings.server_connect_timeout <= milliseconds:
        settings.server_connect_timeout = milliseconds
    if not 0 < settings.server_timeout <= milliseconds:
        settings.server_timeout = milliseconds
