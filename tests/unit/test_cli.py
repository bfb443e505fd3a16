"""The CLI as a user meets it without root: help, version, usage errors, exit codes."""

import subprocess
import sys

from sandbox import netdoctor, netdoctor_exe
from uninstalled import ROOT

# netdoctor importable in a child interpreter, installed or not.
def python(code: str) -> subprocess.CompletedProcess:
    """This interpreter running code, from the project's folder."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=30, cwd=ROOT)


PRELUDE = f"import sys\nsys.path.insert(0, {ROOT + '/tests'!r})\nimport uninstalled\nuninstalled.install()\n"


def test_help_lists_commands_and_does_not_import_scapy():
    res = netdoctor("--help")
    assert res.returncode == 0 and "path" in res.stdout and "lab" in res.stdout
    probe = python(
        PRELUDE + "from netdoctor.diagnose.cli import app as cli\n"
        "try:\n    cli.main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('scapy', 'pyroute2', 'networkx') if m in sys.modules))")
    assert probe.stdout.strip().splitlines()[-1] == "[]"


def test_a_command_run_imports_no_heavy_library():
    # A command that parses every kind of option (here it stops at the bad --format, before
    # any I/O) must not pull in pydantic (typer 0.29's option coercion) or networkx: each cost
    # 0.2 s of every run (bench/, pyinstrument).
    probe = python(
        PRELUDE + "from netdoctor.diagnose.cli import app as cli\n"
        "try:\n    cli.main(['trace', 'x', 'y', '--format', 'xml', '--timeout', '2',"
        " '--port', '80'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('pydantic', 'networkx', 'scapy', 'pyroute2')"
        " if m in sys.modules))")
    assert "--format must be one of" in probe.stderr
    assert probe.stdout.strip().splitlines()[-1] == "[]"


def test_version():
    res = netdoctor("--version")
    assert res.returncode == 0 and res.stdout.startswith("netdoctor ")


def test_unknown_format_is_a_usage_error():
    res = netdoctor("path", "anything", "--format", "xml")
    assert res.returncode == 2
    assert "--format must be one of" in res.stderr and "Traceback" not in res.stderr


def test_missing_argument_is_a_usage_error():
    res = netdoctor("path")
    assert res.returncode == 2 and "Missing argument" in res.stderr


def test_unknown_command():
    res = netdoctor("frobnicate")
    assert res.returncode == 2


def test_lab_break_lists_faults():
    res = netdoctor("lab", "break", "--list")
    assert res.returncode == 0
    for fault in ("ip-forward-off", "forward-drop", "nat-missing", "veth-detached", "veth-down",
                  "bridge-down", "no-default-route", "dns-unreachable"):
        assert fault in res.stdout


def test_checks_from_a_saved_snapshot_colour_only_on_a_terminal(tmp_path, healthy_lab):
    import json
    import shutil

    import snapshot_edits as E

    snap = E.edit_host_ns(healthy_lab, lambda ns: E.sysctl(ns, "net.ipv4.ip_forward", "0"))
    path = tmp_path / "snap.json"
    path.write_text(json.dumps(snap.to_dict()))
    piped = netdoctor("checks", "--from", path)
    assert piped.returncode == 1
    assert "ERROR   ip-forward-disabled  host ndlab-host" in piped.stdout
    assert "\x1b[" not in piped.stdout
    if shutil.which("script") is None:
        return
    exe = " ".join(netdoctor_exe())
    tty = subprocess.run(["script", "-qec", f"{exe} checks --from {path}", "/dev/null"],
                         capture_output=True, text=True)
    assert "\x1b[" in tty.stdout and "ip-forward-disabled" in tty.stdout


def test_checks_from_rejects_what_is_not_a_snapshot(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema": "something/1"}')
    res = netdoctor("checks", "--from", bad)
    assert res.returncode == 2 and "not a netdoctor snapshot" in res.stderr
    res = netdoctor("checks", "--from", tmp_path / "missing.json")
    assert res.returncode == 2 and "no such file" in res.stderr
    res = netdoctor("checks", "--fail-on", "info", "--from", bad)
    assert res.returncode == 2


def test_checks_can_be_skipped_and_chosen_by_tag(tmp_path, healthy_lab):
    import json

    import snapshot_edits as E

    snap = E.edit_host_ns(healthy_lab, lambda ns: E.sysctl(ns, "net.ipv4.ip_forward", "0"))
    path = tmp_path / "snap.json"
    path.write_text(json.dumps(snap.to_dict()))
    found = netdoctor("checks", "--from", path, "--format", "json")
    assert found.returncode == 1
    assert "ip-forward-disabled" in {f["id"] for f in json.loads(found.stdout)["findings"]}
    skipped = netdoctor("checks", "--from", path, "--skip", "ip-forward-disabled")
    assert skipped.returncode == 0 and "ip-forward-disabled" not in skipped.stdout
    other_tag = netdoctor("checks", "--from", path, "--tags", "netfilter,dns")
    assert other_tag.returncode == 0
    by_tag = netdoctor("checks", "--from", path, "--tags", "forwarding")
    assert by_tag.returncode == 1 and "ip-forward-disabled" in by_tag.stdout
    listed = netdoctor("checks", "--list", "--tags", "nat").stdout.split()
    assert "nat-missing" in listed and "veth-down" not in listed
    for bad in (("--skip", "no-such-check"), ("--tags", "no-such-tag")):
        res = netdoctor("checks", "--from", path, *bad)
        assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1


def test_every_error_kind_has_its_documented_exit_status():
    from netdoctor.diagnose import errors
    from netdoctor.diagnose.cli.status import ExitStatus, exit_status_for

    expected = {errors.UsageError: 2, errors.TargetNotFound: 3, errors.Unresolved: 4,
                errors.NoPermission: 5, errors.MissingDependency: 6, errors.LabStateError: 7,
                errors.PathChanged: 8, errors.InternalError: 70, errors.ParseError: 70,
                errors.CommandFailed: 70, errors.NetdoctorError: 70}
    for kind, code in expected.items():
        assert exit_status_for(kind("x")) == code, kind
    assert exit_status_for(KeyboardInterrupt()) == ExitStatus.INTERRUPTED == 130
    assert exit_status_for(ValueError("a bug")) == ExitStatus.INTERNAL


def test_an_interrupt_that_surfaces_wrapped_is_still_an_interrupt():
    # A SIGTERM that lands while a class is being made (an import, mid-run) comes out as
    # "RuntimeError: Error calling __set_name__ ..." caused by the KeyboardInterrupt: exit 130,
    # not an internal error (exit 70).
    from netdoctor.diagnose.cli.status import ExitStatus, exit_status_for

    try:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as e:
            raise RuntimeError("Error calling __set_name__ on 'Field' instance") from e
    except RuntimeError as wrapped:
        assert exit_status_for(wrapped) == ExitStatus.INTERRUPTED
    try:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            raise ValueError("raised while handling it")
    except ValueError as during:
        assert exit_status_for(during) == ExitStatus.INTERRUPTED


def test_an_interrupt_inside_a_finalizer_is_one_line_and_still_interrupts():
    """A signal that lands in a weakref callback (the import system's module locks have
    them) raises where Python cannot propagate: it printed "Exception ignored ... Traceback"
    and the run went on. It must end the run like any interrupt, with no traceback."""
    code = (
        "from netdoctor.diagnose.cli import entry\n"
        "entry.install()\n"
        "import weakref\n"
        "class A: pass\n"
        "a = A()\n"
        "def cb(ref):\n"
        "    raise KeyboardInterrupt\n"
        "r = weakref.ref(a, cb)\n"
        "try:\n"
        "    del a\n"
        "    import time\n"
        "    time.sleep(5)  # the run goes on a moment; the interrupt must still come\n"
        "    print('went on')\n"
        "except KeyboardInterrupt:\n"
        "    print('interrupted')\n")
    res = python(code)
    assert res.stdout.strip() == "interrupted" and res.stderr == "", (res.stdout, res.stderr)


def test_an_interrupt_inside_a_class_made_while_starting_is_one_line():
    """A signal that lands while an import at start-up makes a class with a
    cached_property (typer imports platform, whose uname_result has one) surfaces as the
    RuntimeError Python wraps it in: it printed a traceback and ended with status 1."""
    code = (
        "import sys, importlib.abc\n"
        "class Interrupting(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name == 'netdoctor.diagnose.cli.app':\n"
        "            try:\n"
        "                raise KeyboardInterrupt\n"
        "            except KeyboardInterrupt as e:\n"
        "                raise RuntimeError(\"Error calling __set_name__ on \"\n"
        "                                   \"'cached_property' instance\") from e\n"
        "        return None\n"
        "sys.meta_path.insert(0, Interrupting())\n"
        "from netdoctor.diagnose.cli import entry\n"
        "entry.main()\n")
    res = python(code)
    assert (res.returncode, res.stderr) == (130, "netdoctor: interrupted\n"), res.stderr


def test_report_renders_a_saved_checks_run_as_the_run_itself_did(tmp_path):
    import recorded

    snap = recorded.path("lab-checks-snapshot.json")
    direct = netdoctor("checks", "--from", snap)
    saved = tmp_path / "checks.json"
    saved.write_text(netdoctor("checks", "--from", snap, "--format", "json").stdout)
    again = netdoctor("report", str(saved))
    assert again.returncode == 0 and again.stdout == direct.stdout
    md = netdoctor("report", str(saved), "--format", "markdown")
    assert md.stdout == netdoctor("checks", "--from", snap, "--format", "markdown").stdout


def test_report_draws_a_saved_trace_and_refuses_what_is_not_a_report(tmp_path):
    import recorded

    trace = recorded.path("lab-trace-forward-drop.json")
    text = netdoctor("report", trace)
    assert text.returncode == 0
    assert "cause: forward-dropped" in text.stdout and "fix: ip netns exec ndlab-host" in text.stdout
    md = netdoctor("report", trace, "--format", "markdown").stdout
    assert "```mermaid\nflowchart LR\n" in md and "## Kernel decisions (tracefs)" in md
    mermaid = netdoctor("report", trace, "--format", "mermaid").stdout
    assert mermaid.startswith("flowchart LR\n") and "✗ forward-dropped" in mermaid
    junk = tmp_path / "junk.json"
    junk.write_text("[1, 2")
    for bad, why in ((str(junk), "cannot read report"),
                     (recorded.path("lab-checks-snapshot.json"), "checks --from FILE"),
                     (recorded.path("docker-nft.json"), "not a netdoctor report"),
                     (str(tmp_path / "missing.json"), "no such file")):
        res = netdoctor("report", bad)
        assert res.returncode == 2 and why in res.stderr and res.stderr.count("\n") == 1, res


def test_the_ladder_keeps_the_arp_evidence_on_the_hop_where_it_stopped(tmp_path):
    """The hop where the probe stopped showed only "<- stopped here": its own unanswered ARP,
    the evidence of a neighbour-failed verdict there, was dropped from the ladder."""
    import json

    import recorded

    doc = recorded.document("lab-trace-forward-drop.json")
    for h in doc["hops"]:
        if h["role"] == "bridge":
            h["arp_unanswered"] = ["172.29.0.99"]
    saved = tmp_path / "trace.json"
    saved.write_text(json.dumps(doc))
    res = netdoctor("report", str(saved))
    bridge = next(l for l in res.stdout.splitlines() if l.startswith("bridge"))
    assert "<- stopped here" in bridge and "ARP for 172.29.0.99: no reply" in bridge, bridge
    # The report pasted into a ticket says it too.
    md = netdoctor("report", str(saved), "--format", "markdown").stdout
    row = next(l for l in md.splitlines() if l.startswith("| bridge"))
    assert "(stopped here)" in row and "ARP for 172.29.0.99: no reply" in row, row
