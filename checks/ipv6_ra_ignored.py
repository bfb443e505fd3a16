from . import Check, register


def ra_configured(namespace, link) -> list:
    """What says link's IPv6 is configured by router advertisements: an address with a
    lifetime (SLAAC) or a route the kernel learnt from an RA."""
    said = [f"{a} dynamic" for a in link.addresses
            if a.family == "inet6" and a.scope == "global" and "dynamic" in a.flags]
    said += [f"{r.dst} via {r.gateway} proto ra" for r in namespace.routes
             if r.family == "inet6" and r.dev == link.name and r.protocol == "ra"]
    return said


@register
class Ipv6RaIgnored(Check):
    """IPv6 forwarding makes the host ignore the router advertisements it configures its
    uplink from"""

    id = "ipv6-ra-ignored"
    severity = "error"
    scope = "host"
    runs_on = "container"
    tags = ("ipv6", "routing", "sysctl", "path")
    blocks_at = (("request", "bridge"),)
    precedence = 11

    def run(self, ctx):
        h = ctx.host_ns
        if ctx.family != "inet6" or h is None or not ctx.bridged:
            return
        s = h.sysctls
        defaults = [r for r in h.default_routes("inet6") if r.table == "main"]
        for link in h.links:
            if link.is_loopback:
                continue
            fwd = f"net.ipv6.conf.{link.name}.forwarding"
            ra = f"net.ipv6.conf.{link.name}.accept_ra"
            if s.get(fwd) != "1" or s.get(ra) != "1":
                continue
            said = ra_configured(h, link)
            if not said:
                continue
            learnt = [r for r in defaults if r.protocol == "ra" and r.dev == link.name]
            evidence = {fwd: "1", ra: "1", "configured_by_ra": said,
                        "ipv6_default_routes": [f"{r.dst} via {r.gateway} dev {r.dev} proto "
                                                f"{r.protocol}" + (f" expires {r.expires}s"
                                                                   if r.expires else "")
                                                for r in defaults]}
            fix = f"{{in_host}}sysctl -w {ra}=2"
            if not defaults:
                yield self.finding(
                    ctx, f"{ctx.vars['host_ns']} has no IPv6 default route: {link.name} is "
                         f"configured by router advertisements ({said[0]}), but with IPv6 "
                         f"forwarding on and accept_ra = 1 the kernel ignores them, so the "
                         f"default route they gave has expired",
                    evidence, fix, uplink6=link.name)
            elif learnt and len(learnt) == len(defaults):
                left = min((r.expires for r in learnt if r.expires), default=None)
                yield self.finding(
                    ctx, f"the IPv6 default route of {ctx.vars['host_ns']} was learnt from a "
                         f"router advertisement on {link.name}, but with IPv6 forwarding on "
                         f"and accept_ra = 1 the kernel ignores new ones: it will expire"
                         + (f" in {left} s" if left else "") + " and not come back",
                    evidence, fix, severity="warning", uplink6=link.name)
