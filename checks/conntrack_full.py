from . import Check, register


@register
class ConntrackFull(Check):
    """The connection-tracking table is (nearly) full: new flows are dropped"""

    id = "conntrack-full"
    severity = "warning"
    scope = "host"
    tags = ("netfilter", "conntrack")

    def run(self, ctx):
        s = ctx.namespace.sysctls
        try:
            count = int(s["net.netfilter.nf_conntrack_count"])
            limit = int(s["net.netfilter.nf_conntrack_max"])
        except (KeyError, ValueError):
            return
        if limit <= 0 or count < 0.9 * limit:
            return
        severity = "error" if count >= 0.99 * limit else "warning"
        yield self.finding(
            ctx, f"{count} of {limit} conntrack entries in use ({100 * count // limit}%) in "
                 f"{ctx.subject}: when it is full the kernel drops new connections",
            {"net.netfilter.nf_conntrack_count": count, "net.netfilter.nf_conntrack_max": limit},
            "{in_host}sysctl -w net.netfilter.nf_conntrack_max=" + str(limit * 2),
            severity=severity, count=count, limit=limit)
