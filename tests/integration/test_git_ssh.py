"""Private repositories over SSH with a per-app deploy key, against a real sshd on loopback."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from controller.credentials import RepositoryCredentials, encode_ssh_key
from controller.errors import SourceError
from controller.source.git import GitSource
from controller.store.crypto import SecretBox
from controller.store.models import App
from tests.gitrepo import GitRepo, free_port
from tests.support import port_open, unavailable, wait_until

SSHD = "/usr/sbin/sshd"
BOX = SecretBox("ssh-test-key-" + "s" * 40)


@dataclass
class SshServer:
    port: int
    deploy_key: str
    stranger_key: str


def _keygen(path: Path) -> str:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True, timeout=30
    )
    return path.read_text()


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[SshServer]:
    if not Path(SSHD).exists() or shutil.which("ssh-keygen") is None:
        unavailable("openssh-server is not installed (apt-get install openssh-server)")
    keys = tmp_path / "keys"
    keys.mkdir()
    _keygen(keys / "host")
    deploy_key = _keygen(keys / "deploy")
    stranger_key = _keygen(keys / "stranger")
    (keys / "authorized_keys").write_text((keys / "deploy.pub").read_text())
    port = free_port()
    config = keys / "sshd_config"
    config.write_text(
        "\n".join(
            [
                f"Port {port}",
                "ListenAddress 127.0.0.1",
                f"HostKey {keys / 'host'}",
                f"AuthorizedKeysFile {keys / 'authorized_keys'}",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "PermitRootLogin prohibit-password",
                "StrictModes no",
                "UsePAM no",
                f"PidFile {keys / 'sshd.pid'}",
            ]
        )
        + "\n"
    )
    Path("/run/sshd").mkdir(exist_ok=True)
    server = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stderr=subprocess.PIPE)
    try:
        wait_until(lambda: port_open("127.0.0.1", port), timeout=15, what="sshd to listen")
        yield SshServer(port, deploy_key, stranger_key)
    finally:
        server.terminate()
        server.wait(timeout=10)


def _credentials_for(url: str, key: str) -> RepositoryCredentials:
    app = App(
        tenant_id="t",
        name="private",
        repo_url=url,
        webhook_secret_encrypted="x",
        credentials_encrypted=BOX.encrypt(encode_ssh_key(key, "root")),
    )
    provider = RepositoryCredentials()
    provider.load(app, BOX)
    return provider


async def test_a_deploy_key_fetches_a_private_repository(sshd: SshServer, tmp_path: Path) -> None:
    repo = GitRepo.create(tmp_path, "private")
    sha = repo.commit({"paas.yaml": "version: 1\n"}, "first")
    url = f"ssh://root@127.0.0.1:{sshd.port}{repo.path}"
    source = GitSource(tmp_path / "cache", credentials=_credentials_for(url, sshd.deploy_key))
    assert await source.remote_head(url, "main") == sha
    assert await source.resolve(url, "main") == sha
    assert await source.read_file(url, sha, "paas.yaml") == b"version: 1\n"


async def test_a_key_the_server_does_not_know_is_an_authentication_failure(
    sshd: SshServer, tmp_path: Path
) -> None:
    repo = GitRepo.create(tmp_path, "private")
    repo.commit({"paas.yaml": "version: 1\n"}, "first")
    url = f"ssh://root@127.0.0.1:{sshd.port}{repo.path}"
    source = GitSource(tmp_path / "cache", credentials=_credentials_for(url, sshd.stranger_key))
    with pytest.raises(SourceError, match="authentication failed") as caught:
        await source.resolve(url, "main")
    assert "PRIVATE KEY" not in str(caught.value)


def test_a_key_that_is_not_a_private_key_is_refused() -> None:
    from controller.errors import ValidationError

    with pytest.raises(ValidationError, match="ssh_private_key"):
        encode_ssh_key("ssh-ed25519 AAAA... this is a public key")
