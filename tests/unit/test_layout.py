"""The layout's promises (README "Layout"), checked on the source itself: the middle of the
pipeline does no I/O, the checks import no other check, and only host/ and capture/ start
processes or open sockets."""

import ast
import os

from uninstalled import ROOT

PURE = ("diagnose/parse", "diagnose/facts", "diagnose/reason", "diagnose/report", "checks")
# (socket is allowed: parsers use its address conversions, inet_ntop and the like)
SYSTEM_MODULES = {"subprocess", "ctypes", "fcntl", "select", "shutil"}


def modules(folder):
    for dirpath, _, files in os.walk(os.path.join(ROOT, folder)):
        for f in files:
            if f.endswith(".py"):
                path = os.path.join(dirpath, f)
                yield os.path.relpath(path, ROOT), ast.parse(open(path).read())


def imported(tree, name):
    """Every module name the file imports, relative imports resolved (netdoctor.*)."""
    package = ["netdoctor"] + os.path.dirname(name).split("/")
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package[:len(package) - (node.level - 1)]
                base = ".".join(parts + ([base] if base else []))
            yield base
            yield from (f"{base}.{a.name}" for a in node.names)


def test_the_middle_of_the_pipeline_touches_no_system():
    for folder in PURE:
        for name, tree in modules(folder):
            for mod in imported(tree, name):
                assert mod.split(".")[0] not in SYSTEM_MODULES, (name, mod)
                assert not mod.startswith(("netdoctor.diagnose.host", "netdoctor.capture",
                                           "netdoctor.diagnose.pipeline")), (name, mod)


def test_no_check_imports_another():
    """Checks share code only through context and private (_name) helper modules."""
    names = {f[:-3] for f in os.listdir(os.path.join(ROOT, "checks")) if f.endswith(".py")}
    for name, tree in modules("checks"):
        for mod in imported(tree, name):
            if mod.startswith("netdoctor.checks."):
                leaf = mod.split(".")[2]
                assert leaf.startswith("_") or leaf == "context" or leaf not in names, (name, mod)


def test_processes_are_started_only_at_the_edges():
    for folder in ("diagnose", "checks", "runbooks"):
        for name, tree in modules(folder):
            if name.startswith(("diagnose/host/", "diagnose/lab/")):
                continue
            assert "subprocess" not in set(imported(tree, name)), name
