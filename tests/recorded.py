"""The one place the recorded data lives: tests/data, recorded from the lab's and a real
Docker engine's namespaces by tests/record_data.py."""

import json
import os

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")


def path(name: str) -> str:
    return os.path.join(DATA, name)


def text(name: str) -> str:
    with open(path(name)) as f:
        return f.read()


def document(name: str):
    return json.loads(text(name))
