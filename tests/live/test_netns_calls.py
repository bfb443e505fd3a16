"""Calls into namespaces: the threads that make them never keep a namespace alive, and
calls from several threads at once, or from inside a call, each run where they were sent."""

import os
import threading

from sandbox import sh, unique

from netdoctor.diagnose.host import netns


def namespaces_of_my_threads() -> set:
    out = set()
    for tid in os.listdir("/proc/self/task"):
        try:
            out.add(os.stat(f"/proc/self/task/{tid}/ns/net").st_ino)
        except FileNotFoundError:
            pass  # a thread that just ended
    return out


def here() -> int:
    return os.stat("/proc/thread-self/ns/net").st_ino


def test_calls_run_inside_and_leave_nothing_pinned():
    names = [unique("ndt-call") for _ in range(3)]
    for n in names:
        sh("ip", "netns", "add", n)
    try:
        spaces = [netns.named(n) for n in names]
        # one after the other, and many at once from several threads
        assert [netns.call_in(ns, here) for ns in spaces] == [ns.inode for ns in spaces]
        seen, errors = {}, []

        def caller(i):
            try:
                for _ in range(20):
                    seen.setdefault(i, set()).add(netns.call_in(spaces[i % 3], here))
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)
        threads = [threading.Thread(target=caller, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        assert all(seen[i] == {spaces[i % 3].inode} for i in range(6))
        # a call made from inside a call runs where it is sent, not where its caller is
        assert netns.call_in(spaces[0], netns.call_in, spaces[1], here) == spaces[1].inode
        # ... and a call home from inside a namespace goes home (it ran where it was made)
        home = os.stat("/proc/self/ns/net").st_ino
        assert netns.call_in(spaces[0], netns.call_in, netns.own(), here) == home
        # no thread of this process is left inside any of them
        assert namespaces_of_my_threads() == {os.stat("/proc/self/ns/net").st_ino}
    finally:
        for n in names:
            sh("ip", "netns", "del", n)


def test_a_hopping_thread_enters_and_comes_back():
    names = [unique("ndt-hop") for _ in range(2)]
    for n in names:
        sh("ip", "netns", "add", n)
    try:
        a, b = (netns.named(n) for n in names)

        def walk():
            return (here(), netns.call_in(a, here), netns.call_in(a, netns.call_in, b, here),
                    netns.call_in(a, netns.call_in, netns.own(), here), here())
        home = os.stat("/proc/self/ns/net").st_ino
        assert netns.hopping(walk) == (home, a.inode, b.inode, home, home)
        assert namespaces_of_my_threads() == {home}
    finally:
        for n in names:
            sh("ip", "netns", "del", n)
