from . import Check, register

HOP_ROLES = ("host-veth", "bridge", "uplink", "tunnel", "underlay", "out-bridge",
             "bridge-port", "far-veth")


@register
class DatapathUnseen(Check):
    """A hop of the path runs a program netdoctor cannot evaluate: a tc classifier hook or
    an XDP program"""

    id = "datapath-unseen"
    severity = "info"
    scope = "host"
    runs_on = "container"
    tags = ("ebpf", "tc", "path")

    def run(self, ctx):
        h = ctx.host
        if h is None:
            return
        hooks = h.tc_hooks or {}
        for hop in ctx.path.get("hops", ()):
            if hop["role"] not in HOP_ROLES:
                continue
            link = h.namespace.link(ifindex=hop["ifindex"])
            if link is None:
                continue
            what = []
            if link.name in hooks:
                what.append(f"a tc {hooks[link.name]} hook (tc filters or eBPF programs "
                            f"decide there)")
            if link.xdp:
                what.append(f"an XDP program ({link.xdp}): packets it drops never become "
                            f"kernel packets and leave no drop reason")
            if not what:
                continue
            yield self.finding(
                ctx, f"{link.name} ({hop['role']} of {ctx.subject}'s path) has "
                     f"{' and '.join(what)}: netdoctor does not evaluate them, and iptables "
                     f"counters say nothing about what they decide",
                {"interface": link.name, "role": hop["role"], "tc_hook": hooks.get(link.name),
                 "xdp": link.xdp},
                "{in_host}tc filter show dev " + link.name + " ingress; "
                "{in_host}tc filter show dev " + link.name + " egress; bpftool net show",
                verify=True, device=link.name)
