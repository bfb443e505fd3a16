from . import Check, register


@register
class ReplyPathAsymmetric(Check):
    """The host routes the replies to the container elsewhere than the requests came from"""

    id = "reply-path-asymmetric"
    severity = "error"
    scope = "host"
    runs_on = "container"
    tags = ("routing", "path")
    blocks_at = (("reply", "uplink"),)
    precedence = 13

    def run(self, ctx):
        if ctx.host is None or not ctx.bridged:
            return
        # The container network's own bridge is where its connected route leads: a veth
        # attached elsewhere is veth-not-attached, not a routing asymmetry.
        own = ctx.network_bridge.name if ctx.network_bridge is not None else None
        for r in ctx.path.get("reply_lookups") or ():
            expected = r.get("expected_dev")
            if not expected or r.get("dev") in (expected, own):
                continue
            if r.get("dev"):
                what = (f"out of {r['dev']}" + (f" via {r['gateway']}" if r.get("gateway")
                                                else "") + f", not {expected}")
            else:
                what = f"nowhere ({r.get('error')})"
            yield self.finding(
                ctx, f"{ctx.vars['host_ns']} routes the replies to {ctx.subject} ({r['query']}) "
                     f"{what}: the request goes out one way and its answers come back another "
                     f"(a policy rule, a more specific route, a route in another table)",
                {"lookup": r["query"], "kernel_answer": r.get("dev") or r.get("error"),
                 "gateway": r.get("gateway"), "request_came_in_by": expected},
                "{in_host}ip rule show; {in_host}" + r["query"], verify=True,
                reply_query=r["query"], expected_dev=expected)
