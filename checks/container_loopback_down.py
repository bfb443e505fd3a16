import ipaddress

from . import Check, register
from netdoctor.diagnose.parse import resolv_conf


@register
class ContainerLoopbackDown(Check):
    """The container's loopback interface is down"""

    id = "container-loopback-down"
    severity = "error"
    scope = "container"
    tags = ("link", "dns")
    # What listens on the container's own loopback is cut off: a resolver there (Docker's
    # embedded DNS on 127.0.0.11) first. The path out is not: the verdict weighs it where
    # the name did not resolve (reason.verdict.RESOLVER_CUT_OFF).

    def run(self, ctx):
        lo = next((l for l in ctx.namespace.links if l.is_loopback), None)
        if lo is None or "UP" in lo.flags:
            return
        conf = resolv_conf.parse_resolv_conf(ctx.container.resolv_conf) \
            if ctx.container.resolv_conf is not None else None
        on_lo = [s for s in (conf.nameservers if conf is not None else ())
                 if _on_loopback(s)]
        what = (f"its nameserver{'s' if len(on_lo) > 1 else ''} {', '.join(on_lo)} "
                f"listen{'' if len(on_lo) > 1 else 's'} there, so no name resolves"
                + resolv_conf.loopback_note(on_lo[0]) if on_lo else
                "whatever it serves to itself on 127.0.0.1 or ::1 is unreachable")
        yield self.finding(
            ctx, f"{ctx.subject}'s loopback interface {lo.name} is down: {what}",
            {"interface": lo.name, "flags": list(lo.flags), "nameservers_on_loopback": on_lo},
            "{in_container}ip link set " + lo.name + " up",
            severity="error" if on_lo else "info", nameserver=on_lo[0] if on_lo else "")


def _on_loopback(server: str) -> bool:
    try:
        return ipaddress.ip_address(server).is_loopback
    except ValueError:
        return False
