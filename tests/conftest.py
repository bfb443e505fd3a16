"""Shared by both tiers: the tests folder's helpers on the path (sandbox, recorded, frames),
and netdoctor importable from this checkout when it is not installed.

The tiers have their own fixtures: tests/unit/conftest.py (recorded data, no root) and
tests/live/conftest.py (root, real namespaces, real engines, the residue check)."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import uninstalled  # noqa: E402

uninstalled.install()
