"""HOME/instance and HOME/secret_key: created once, whoever starts first."""

from __future__ import annotations

import stat
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from controller.settings import Settings


def _instance_of(home: str) -> str:
    return Settings(home=Path(home)).instance_id()


def _key_of(home: str) -> str:
    return Settings(home=Path(home)).signing_key()


def test_processes_starting_together_agree_on_the_instance_and_the_key(tmp_path: Path) -> None:
    homes = [str(tmp_path / f"home{n}") for n in range(5)]
    with ProcessPoolExecutor(max_workers=4) as pool:
        for home in homes:
            instances = set(pool.map(_instance_of, [home] * 8))
            keys = set(pool.map(_key_of, [home] * 8))
            assert len(instances) == 1 and len(keys) == 1, home
            assert (Path(home) / "instance").read_text() == instances.pop()
            assert (Path(home) / "secret_key").read_text() == keys.pop()
    assert not [p for p in tmp_path.rglob(".*") if p.is_file()], "no temporary files left"


def test_the_secret_key_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    Settings(home=tmp_path).signing_key()
    mode = stat.S_IMODE((tmp_path / "secret_key").stat().st_mode)
    assert mode == 0o600


def test_an_existing_instance_id_is_kept(tmp_path: Path) -> None:
    (tmp_path / "instance").write_text("ryabc123\n")
    assert Settings(home=tmp_path).instance_id() == "ryabc123"
