"""--peer: what is accepted before any I/O, the command that reaches the far host, and the
agent's refusal of another version."""

import io
import json

import pytest

from netdoctor.diagnose import __version__
from netdoctor.diagnose.errors import UsageError
from netdoctor.diagnose.host.peer import agent_argv, check_peer, command_there, run_there
from netdoctor.diagnose.pipeline.agent import Agent, serve


@pytest.mark.parametrize("spec", ["ssh://root@192.168.77.2", "ssh://node2", "ssh://u@h:2222",
                                  "auto", "netns:ndt-host"])
def test_peers_accepted(spec):
    check_peer(spec)


@pytest.mark.parametrize("spec", ["node2", "ssh://", "ssh://h:port", "netns:", "ssh://h/x",
                                  "http://h"])
def test_peers_refused(spec):
    with pytest.raises(UsageError):
        check_peer(spec)


@pytest.mark.parametrize("spec, config, prefix", [
    ("ssh://admin@node2:2222", "/tmp/my cfg", "ssh -F '/tmp/my cfg' -p 2222 admin@node2 "),
    ("ssh://192.168.77.2", None, "ssh 192.168.77.2 "),
    ("netns:ndlab2-h1", "/ignored", "ip netns exec ndlab2-h1 "),
])
def test_a_far_hosts_commands_are_printed_to_run_there(spec, config, prefix):
    """A far host's finding prints its fix as the user runs it from here: through the same
    ssh (their config, port, user) or, for a lab host, in its namespace."""
    assert run_there(spec, config) == prefix


def test_a_whole_command_runs_there_with_its_pipes():
    line = "iptables-save | grep -n 8472; echo done"
    assert command_there("ssh://n2", None, line) == f"ssh n2 '{line}'"
    assert command_there("netns:h1", None, line) == f"ip netns exec h1 sh -c '{line}'"


def test_the_far_agent_is_reached_with_the_users_own_ssh():
    argv = agent_argv("ssh://admin@node2:2222", "/tmp/cfg")
    assert argv == ["ssh", "-T", "-o", "BatchMode=yes", "-F", "/tmp/cfg", "-p", "2222",
                    "admin@node2", "netdoctor", "agent"]
    assert agent_argv("ssh://node2")[-3:] == ["node2", "netdoctor", "agent"]
    assert agent_argv("netns:h1")[:4] == ["ip", "netns", "exec", "h1"]


def test_the_agent_refuses_another_version_and_answers_every_line():
    assert Agent().handle({"op": "hello", "version": __version__})["ok"]
    no = Agent().handle({"op": "hello", "version": "0.0.1"})
    assert not no["ok"] and "same version" in no["error"]
    out = io.StringIO()
    serve(io.StringIO('not json\n{"op": "hello", "version": "0.0.1"}\n[1]\n{"op": "what"}\n'
                      '{"op": "bye"}\n'), out)
    answers = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [a["ok"] for a in answers] == [False, False, False, False, True]
    assert "bad request" in answers[0]["error"] and "unknown request" in answers[3]["error"]


def test_fleet_hosts_as_ssh_takes_them_or_from_a_file(tmp_path):
    from netdoctor.diagnose.host.peer import host_list

    assert host_list("node1, admin@node2 ,ssh://node3:2222,netns:lab-h1,node1") == [
        "ssh://node1", "ssh://admin@node2", "ssh://node3:2222", "netns:lab-h1"]
    f = tmp_path / "hosts"
    f.write_text("# the pool\nnode1\n\nnode2  # rack 2\n")
    assert host_list(f"@{f}") == ["ssh://node1", "ssh://node2"]
    for bad in ("", " , ", "-oProxyCommand=x", "a;b", "@/no/such/file"):
        with pytest.raises(UsageError):
            host_list(bad)
