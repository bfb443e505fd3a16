"""Import netdoctor from this checkout when it is not installed.

pyproject.toml maps the repository's top-level folders to the sub-packages of `netdoctor`
(`diagnose/` is `netdoctor.diagnose`, ...). This finder does the same mapping, after every
other finder, so an installed netdoctor always wins. `python tests/uninstalled.py ARGS` runs
the command from the checkout.
"""

import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FOLDERS = ("diagnose", "checks", "capture", "runbooks")


class CheckoutFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "netdoctor":
            spec = importlib.machinery.ModuleSpec(name, None, is_package=True)
            spec.submodule_search_locations = []
            return spec
        top, _, folder = name.partition(".")
        if top == "netdoctor" and folder in FOLDERS:
            where = os.path.join(ROOT, folder)
            return importlib.util.spec_from_file_location(
                name, os.path.join(where, "__init__.py"), submodule_search_locations=[where])
        return None


def install() -> None:
    if not any(isinstance(f, CheckoutFinder) for f in sys.meta_path):
        sys.meta_path.append(CheckoutFinder())


if __name__ == "__main__":
    install()
    from netdoctor.diagnose.cli.entry import main

    main()
