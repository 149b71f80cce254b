"""The cost check's counts of a split file, kept in the user's own cache outside the checkout (never in it)."""

from __future__ import annotations

import json

import pytest

from jobs import paths
from jobs.render import cost


def _key(sha: str = "ab" * 32) -> tuple[str, str, str]:
    return sha, "o200k_base", "chat"


def test_counts_are_cached_by_content_for_the_next_process(tmp_path, monkeypatch):
    monkeypatch.setenv("FTOPS_CACHE_DIR", str(tmp_path / "cache"))
    assert cost._user_cached(_key()) is None
    cost._user_cache(_key(), (10, 1234, 300))
    assert cost._user_cached(_key()) == (10, 1234, 300)
    assert cost._user_cached(_key("cd" * 32)) is None  # other content, other entry


@pytest.mark.parametrize("body", ["not json", '{"examples": -1, "tokens": 5, "longest": 1}', '{"examples": 3}'])
def test_an_odd_cache_entry_means_count_again(tmp_path, monkeypatch, body):
    monkeypatch.setenv("FTOPS_CACHE_DIR", str(tmp_path / "cache"))
    path = cost._user_cache_file(_key())
    path.parent.mkdir(parents=True)
    path.write_text(body)
    assert cost._user_cached(_key()) is None


def test_a_cache_inside_the_checkout_is_never_used(project, monkeypatch):
    """A pull request can add files to the checkout (even under an ignored path): counts there are claims."""
    monkeypatch.setenv("FTOPS_CACHE_DIR", str(paths.project_root() / ".ftops" / "cache"))
    assert paths.user_cache_dir() is None
    cost._user_cache(_key(), (1, 1, 1))
    assert cost._user_cached(_key()) is None
    assert not (paths.project_root() / ".ftops" / "cache").exists()


def test_a_render_in_a_new_process_reuses_the_users_counts(project, ftops, tmp_path, monkeypatch):
    """The second render counts nothing again: its counts come from the user's cache, keyed by the sha256."""
    from tests.fixtures.rendered import real_dataset

    monkeypatch.setenv("FTOPS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(cost, "_verified", {})  # as in a new process (earlier tests may have counted this file)
    real_dataset(project)
    assert ftops("render", "--env", "dev", "--out", tmp_path / "one").exit_code == 0
    entries = list((tmp_path / "cache" / "split-counts").glob("*.json"))
    assert entries and all(json.loads(p.read_text())["tokens"] > 0 for p in entries)
    monkeypatch.setattr(cost, "_verified", {})  # what a new process starts with
    monkeypatch.setattr("jobs.data.validate.validate_file", lambda *a, **k: pytest.fail("counted again"))
    assert ftops("render", "--env", "dev", "--out", tmp_path / "two").exit_code == 0
