from . import Check, register


@register
class Ipv6DadFailed(Check):
    """The container's IPv6 address failed duplicate address detection"""

    id = "ipv6-dad-failed"
    severity = "error"
    scope = "container"
    tags = ("ipv6", "address", "path")
    blocks_at = (("request", None),)
    precedence = 3
    structural = True

    def run(self, ctx):
        eth = ctx.egress
        if eth is None:
            return
        v6 = [a for a in eth.addresses if a.family == "inet6" and a.scope == "global"]
        failed = [a for a in v6 if "dadfailed" in a.flags]
        if not failed:
            return
        usable = [a for a in v6 if not {"dadfailed", "tentative"} & set(a.flags)]
        # The kernel never sends from an address that failed DAD; with no other IPv6 address
        # the container has no IPv6 at all. For IPv4 traffic it is only a warning.
        blocking = ctx.family == "inet6" and not usable
        names = ", ".join(str(a) for a in failed)
        local = next((a.local for a in eth.addresses
                      if a.family == "inet6" and a.scope == "link"), None)
        then = (f" (it has no other IPv6 address: the kernel sends from its link-local {local},"
                f" which no router forwards)" if local else
                " (the container has no other IPv6 address to send from)")
        yield self.finding(
            ctx, f"{names} on {eth.name} in {ctx.subject} failed duplicate address detection: "
                 f"another node on the link answered for it, so the kernel will not use it"
                 + (then if blocking else ""),
            {"interface": eth.name,
             "addresses": {str(a): " ".join(a.flags) for a in v6},
             "usable": [str(a) for a in usable]},
            "{in_container}ip -6 addr show dev {eth} dadfailed", verify=True,
            severity="error" if blocking else "warning", dad_address=str(failed[0]), dad_ip=failed[0].local)
