"""Edits of a recorded snapshot: change one fact, keep every other one as it was recorded."""

from dataclasses import replace

from netdoctor.diagnose.facts.ruleset import Ruleset
from netdoctor.diagnose.parse import iptables_save
from netdoctor.diagnose.lab.control import host_ruleset
from netdoctor.diagnose.facts.namespace import Address, Neighbour, Route
from netdoctor.diagnose.facts.snapshot import Snapshot

import recorded


def load(name="lab-checks-snapshot.json") -> Snapshot:
    return Snapshot.from_dict(recorded.document(name))


def container(snap, name):
    for i, c in enumerate(snap.containers):
        if c.target["name"] == name:
            return i, c
    raise KeyError(name)


def edit_container(snap, name, **changes):
    i, c = container(snap, name)
    cs = list(snap.containers)
    cs[i] = replace(c, **changes)
    return replace(snap, containers=tuple(cs))


def edit_container_ns(snap, name, fn):
    _, c = container(snap, name)
    return edit_container(snap, name, namespace=fn(c.namespace))


def host_key(snap, name="test"):
    return str(container(snap, name)[1].host_inode)


def edit_host_ns(snap, fn, name="test"):
    key = host_key(snap, name)
    hosts = dict(snap.hosts)
    hosts[key] = replace(hosts[key], namespace=fn(hosts[key].namespace))
    return replace(snap, hosts=hosts)


def edit_host(snap, name="test", **changes):
    """The container's host with its HostFacts fields changed (policy_rules, tc_hooks...)."""
    key = host_key(snap, name)
    hosts = dict(snap.hosts)
    hosts[key] = replace(hosts[key], **changes)
    return replace(snap, hosts=hosts)


def set_ruleset(snap, chains, name="test"):
    key = host_key(snap, name)
    hosts = dict(snap.hosts)
    hosts[key] = replace(hosts[key], ruleset=Ruleset(tuple(chains)))
    return replace(snap, hosts=hosts)


def lab_rules(transform=lambda text: text):
    """The lab host's real ruleset text, changed by transform, parsed."""
    return iptables_save.parse_iptables_save(transform(host_ruleset()))


# --- namespace edits ---

def link(ns, name, **changes):
    return replace(ns, links=tuple(replace(l, **changes) if l.name == name else l
                                   for l in ns.links))


def without_flag(ns, name, flag="UP"):
    l = ns.link(name=name)
    return link(ns, name, flags=tuple(f for f in l.flags if f != flag))


def sysctl(ns, key, value):
    return replace(ns, sysctls=dict(ns.sysctls, **{key: value}))


def routes(ns, keep=lambda r: True, add=()):
    return replace(ns, routes=tuple(r for r in ns.routes if keep(r)) + tuple(add))


def add_address(ns, name, local, prefixlen):
    l = ns.link(name=name)
    return link(ns, name, addresses=l.addresses + (Address("inet", local, prefixlen),))


def add_neighbour(ns, dst, dev, state):
    return replace(ns, neighbours=ns.neighbours + (Neighbour(dst, dev, None, (state,)),))


Neighbour = Neighbour


def route(dst, dev, gateway=None, table="main", type_="unicast"):
    return Route(dst=dst, dev=dev, gateway=gateway, table=table, type=type_)
