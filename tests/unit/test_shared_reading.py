"""The namespaces `checks` reads are shared out between netdoctor and its forked DNS sender
through one pipe: each namespace must be taken by exactly one of them, however their
takes interleave."""

import os

from netdoctor.diagnose.host.gather import SharedReading
from netdoctor.diagnose.host.netns import Netns


def test_two_processes_taking_at_once_take_every_namespace_exactly_once():
    namespaces = [Netns(f"/run/netns/n{i}", 1000 + i, f"n{i}") for i in range(5000)]
    shared = SharedReading(namespaces)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the helper: takes as fast as it can, says what it took
        try:
            os.close(r)
            got = []
            while (ns := shared.take()) is not None:
                got.append(str(ns.inode))
            os.write(w, (" ".join(got)).encode())
        finally:
            os._exit(0)
    os.close(w)
    mine = []
    while (ns := shared.take()) is not None:
        mine.append(ns.inode)
    data = b""
    while chunk := os.read(r, 1 << 16):
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    shared.close()
    theirs = [int(x) for x in data.split()]
    assert sorted(mine + theirs) == [ns.inode for ns in namespaces]  # all, and none twice


def test_a_namespace_listed_twice_is_read_once():
    ns = Netns("/run/netns/a", 7, "a")
    shared = SharedReading([ns, Netns("/run/netns/b", 8, "b"), ns])
    taken = []
    while (got := shared.take()) is not None:
        taken.append(got.inode)
    shared.close()
    assert taken == [7, 8]


def test_more_namespaces_than_the_pipe_holds_are_all_read_by_netdoctor_or_the_helper():
    """Past 16,384 namespaces the pipe is full: the rest is netdoctor's alone."""
    namespaces = [Netns(f"/run/netns/n{i}", 1000 + i, f"n{i}") for i in range(20000)]
    shared = SharedReading(namespaces)
    helper, mine = [], []
    while (ns := shared.take(helper=True)) is not None:
        helper.append(ns.inode)
    while (ns := shared.take()) is not None:
        mine.append(ns.inode)
    shared.close()
    assert 0 < len(helper) < len(namespaces)
    assert sorted(helper + mine) == [ns.inode for ns in namespaces]
