"""Replay fixtures: cassettes recorded from the live demo server, with the network blocked."""

from __future__ import annotations

import socket

import pytest

from tests.vcr_setup import load_manifest, make_vcr


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Any real connection attempt fails the test: replays must come from cassettes."""

    def refuse(*args, **kwargs):
        raise AssertionError("a replay test tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture(scope="session")
def manifest():
    return load_manifest()


@pytest.fixture
def cassette():
    """``with cassette("name"):`` replays cassettes/name.yaml and checks it was used up."""
    recorder = make_vcr("none")

    class _Use:
        def __init__(self, name):
            self._cm = recorder.use_cassette(f"{name}.yaml")

        def __enter__(self):
            self.cassette = self._cm.__enter__()
            return self.cassette

        def __exit__(self, *exc):
            self._cm.__exit__(*exc)
            if exc[0] is None:
                assert self.cassette.all_played, "the cassette holds requests runlens no longer sends"

    return _Use
