from . import Check, register
from ._routing import container_misrouted, rp_filter_refuses
from ._rules import PLURAL


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
        # A routed container's address routed elsewhere than its veth: the route is the
        # fault (container-route-missing), and loosening rp_filter would not bring the
        # replies back.
        checks = [] if container_misrouted(ctx)[0] else [(ctx.ingress, ctx.address, "request")]
        if ctx.uplink is not None:
            checks.append((ctx.uplink, ctx.destination, "reply"))
        for iface, source, direction in checks:
            if iface is None:
                continue
            mode, back = rp_filter_refuses(h, iface.name, source)
            if mode == 0:
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
