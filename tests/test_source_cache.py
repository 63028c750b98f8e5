"""What a run keeps between runs (conformance/source.py): the mark that a
document met its schema, and the package catalogue as read.  Neither may
hide an error: a document with errors is checked every time, a changed one
again, and a pickle someone else could have written is never read."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conformance import source
from conformance.source import Marks, SourceErrors, cached, check_schema, validator

SCHEMA = {"type": "object", "required": ["port"],
          "properties": {"port": {"type": "integer", "description": "a port number"}}}


@pytest.fixture(autouse=True)
def cache_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "tcpconf"


def checks(monkeypatch) -> list:
    """Every document the schema really checks, from now on."""
    seen = []
    real = source.Schema.iter_errors
    monkeypatch.setattr(source.Schema, "iter_errors",
                        lambda self, data: seen.append(data) or real(self, data))
    return seen


def test_a_document_that_passed_is_not_checked_again_until_it_changes(monkeypatch):
    seen = checks(monkeypatch)
    check_schema({"port": 80}, Marks(), "a.yaml", validator(SCHEMA))
    check_schema({"port": 80}, Marks(), "a.yaml", validator(SCHEMA))
    check_schema({"port": 81}, Marks(), "a.yaml", validator(SCHEMA))
    assert seen == [{"port": 80}, {"port": 81}]


def test_a_document_with_errors_is_checked_every_time(monkeypatch):
    seen = checks(monkeypatch)
    for _ in range(2):
        with pytest.raises(SourceErrors, match="expected a port number; got 1.0"):
            check_schema({"port": 1.0}, Marks(), "a.yaml", validator(SCHEMA))
    assert len(seen) == 2


def test_another_schema_checks_the_same_document_again(monkeypatch):
    seen = checks(monkeypatch)
    check_schema({"port": 80}, Marks(), "a.yaml", validator(SCHEMA))
    with pytest.raises(SourceErrors, match="expected a string"):
        check_schema({"port": 80}, Marks(), "a.yaml",
                     validator({"properties": {"port": {"type": "string",
                                                        "description": "a string"}}}))
    assert len(seen) == 2


def test_without_a_writable_cache_every_document_is_checked(monkeypatch, tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))
    seen = checks(monkeypatch)
    for _ in range(2):
        check_schema({"port": 80}, Marks(), "a.yaml", validator(SCHEMA))
    assert len(seen) == 2


def test_a_cached_value_is_built_once_per_version_of_its_inputs(tmp_path):
    data = tmp_path / "data.yaml"
    data.write_text("one")
    built = []

    def build():
        built.append(data.read_text())
        return data.read_text()

    assert cached("thing", [data], build) == "one"
    assert cached("thing", [data], build) == "one"
    data.write_text("two")
    assert cached("thing", [data], build) == "two"
    assert built == ["one", "two"]


def test_the_same_bytes_elsewhere_are_built_again(tmp_path):
    """A catalogue names its file: another checkout's copy is another value."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for folder in "ab":
        (tmp_path / folder / "data.yaml").write_text("same")
    for folder in "ab":
        path = tmp_path / folder / "data.yaml"
        assert cached("thing", [path], lambda path=path: str(path)) == str(path)


def test_a_pickle_others_may_write_is_never_read(tmp_path, cache_home):
    data = tmp_path / "data.yaml"
    data.write_text("one")
    cached("thing", [data], lambda: "honest")
    [pickle_file] = cache_home.glob("thing-*.pickle")
    pickle_file.chmod(0o666)
    assert cached("thing", [data], lambda: "rebuilt") == "rebuilt"


def test_the_package_catalogue_comes_from_the_cache_as_it_was_read():
    from conformance import requirements
    first = requirements._load(requirements.DEFAULT_PATH)
    requirements._package_catalogue.cache_clear()
    try:
        for _ in range(2):      # built, then read back
            requirements._package_catalogue.cache_clear()
            again = requirements.load_catalogue()
            assert [e.id for e in again] == [e.id for e in first]
            assert again.get(first.entries[0].id) == first.entries[0]
    finally:
        requirements._package_catalogue.cache_clear()


def test_the_cache_lives_in_the_users_cache_directory(monkeypatch):
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", "/home/someone")
    assert source.cache_dir() == Path("/home/someone/.cache/tcpconf")
    assert os.fspath(source._cache_dir()).startswith("/home/someone/.cache/tcpconf/")
