"""The check registry's contract: stable well-formed IDs, a runbook page for each, no orphans."""

import os
import re

from netdoctor import runbooks
from netdoctor.checks import ID_FORMAT, NOT_CHECKS, SEVERITIES, load_all
from netdoctor.checks.context import contexts


RUNBOOK_DIR = os.path.dirname(runbooks.__file__)


def test_ids_are_kebab_case_and_attributes_complete():
    registry = load_all()
    # Every module of the package registers one check, and nothing else registers any.
    import pkgutil
    from netdoctor import checks

    modules = {m.name for m in pkgutil.iter_modules(checks.__path__) if not m.name.startswith("_")
               and m.name != "context"}
    assert {cls.__module__.rsplit(".", 1)[1] for cls in registry.values()} == modules
    assert len(registry) == len(modules)
    for cid, cls in registry.items():
        assert ID_FORMAT.match(cid), cid
        assert cls.id == cid
        assert cls.severity in SEVERITIES
        assert cls.scope in ("host", "container") and cls.target_kind() in ("host", "container")
        assert cls.title() and not cls.title().endswith(".")


def test_every_check_has_a_runbook_with_every_section():
    for cid in list(load_all()) + list(NOT_CHECKS):
        page = runbooks.text(cid)
        assert page is not None, f"runbooks/{cid}.md is missing"
        assert page.startswith(f"# {cid}"), cid
        parts = runbooks.sections(page)
        assert list(parts) == list(runbooks.SECTIONS), (cid, list(parts))
        assert all(body.strip() for body in parts.values()), cid


def test_no_runbook_without_a_check():
    pages = {f[:-3] for f in os.listdir(RUNBOOK_DIR) if f.endswith(".md")}
    assert pages == set(load_all()) | set(NOT_CHECKS)


def test_runbook_placeholders_are_names_checks_provide(healthy_lab):
    # The names every finding carries, plus the ones specific checks add.
    ctx_vars = set()
    for ctx in contexts(healthy_lab):
        ctx_vars |= set(ctx.vars)
    specific = {"fix", "rule", "direction", "rp_iface", "rp_mode", "next_hop", "count", "limit",
                "other_net", "expected_bridge", "conflict_iface", "conflict_addr", "nameserver",
                "path_mtu", "bridge_address", "family", "shim", "host_port",
                "container_port", "proto", "host_address", "tunnel", "mac", "device",
                "dad_address", "dad_ip", "uplink6", "expected_dev", "reply_query",
                "macvlan_mode", "peer_subnet", "neighbour_dev", "in_neighbour_ns", "session",
                "neighbor", "birdcl", "sysctl_key", "table", "port", "interface",
                "in_interface_ns", "shadowing_net", "shadowing_dev", "ingress", "thresh1",
                "thresh2", "thresh3", "route_dst", "own_route", "prefix", "network",
                "container_address", "bridge_network", "router", "setting", "address",
                "other", "other_mac", "redirected_to", "entry_dev"}
    for cid in load_all():
        used = set(re.findall(r"\{([a-z_][a-z0-9_]*)\}", runbooks.text(cid)))
        unknown = used - ctx_vars - specific
        assert not unknown, (cid, unknown)


def test_fill_leaves_unknown_placeholders_and_code_alone():
    assert runbooks.fill("ip link set {veth} up; awk '{print $3}' {nope}", {"veth": "vethX"}) == \
        "ip link set vethX up; awk '{print $3}' {nope}"
