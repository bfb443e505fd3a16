from . import Check, register
from ._rules import PLURAL
from .context import lookup


def effective_rp_filter(sysctls: dict, ifname: str) -> int:
    """The kernel uses the larger of conf.all and conf.<iface>."""
    def val(key):
        try:
            return int(sysctls.get(key, "0"))
        except ValueError:
            return 0
    return max(val("net.ipv4.conf.all.rp_filter"), val(f"net.ipv4.conf.{ifname}.rp_filter"))


@register
class RpFilterDrop(Check):
    """Reverse-path filtering drops the container's packets or their replies"""

    id = "rp-filter-drop"
    severity = "error"
    scope = "host"
    runs_on = "container"
    tags = ("sysctl", "routing", "path")
    blocks_at = (("request", "bridge"),
                 ("request", "host-veth"),
                 ("reply", "uplink"),
                 ("request", None),
                 ("request", "container"))  # it silences ARP too
    precedence = 13

    def run(self, ctx):
        h = ctx.host_ns
        if h is None or not ctx.bridged or not ctx.address:
            return
        checks = [(ctx.ingress, ctx.address, "request")]
        if ctx.uplink is not None:
            checks.append((ctx.uplink, ctx.destination, "reply"))
        for iface, source, direction in checks:
            if iface is None:
                continue
            mode = effective_rp_filter(h.sysctls, iface.name)
            if mode == 0:
                continue
            back = lookup(h.routes, source)
            ok = back is not None and back.type == "unicast" and (
                mode == 2 or back.dev == iface.name)
            if ok:
                continue
            via = f"{back.dev}" if back is not None and back.dev else "no route"
            yield self.finding(
                ctx, f"rp_filter={mode} ({'strict' if mode == 1 else 'loose'}) on {iface.name} "
                     f"in {ctx.vars['host_ns']}: {PLURAL[direction]} from {source} arrive on "
                     f"{iface.name} but the route back to {source} is via {via}",
                {"interface": iface.name, "rp_filter_effective": mode,
                 "net.ipv4.conf.all.rp_filter": h.sysctls.get("net.ipv4.conf.all.rp_filter"),
                 f"net.ipv4.conf.{iface.name}.rp_filter":
                     h.sysctls.get(f"net.ipv4.conf.{iface.name}.rp_filter"),
                 "source": source, "route_back": back.dst if back else None,
                 "route_back_dev": back.dev if back else None, "direction": direction},
                "{in_host}sysctl -w net.ipv4.conf.all.rp_filter=2 "
                "net.ipv4.conf.{rp_iface}.rp_filter=2", rp_iface=iface.name, rp_mode=mode)
