"""Unit tests: no root, no network, no installed package. They judge recorded snapshots of
real namespaces (tests/data, see tests/recorded.py) and drive the CLI on them."""

import pytest

import snapshot_edits


@pytest.fixture(scope="session")
def healthy_lab():
    """The recorded snapshot of the healthy built-in lab (host, test and web)."""
    return snapshot_edits.load("lab-checks-snapshot.json")


@pytest.fixture(scope="session")
def healthy_docker():
    """The recorded snapshot of a healthy real Docker host (default and user networks)."""
    return snapshot_edits.load("docker-checks-snapshot.json")
