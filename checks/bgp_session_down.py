from . import Check, register
from .context import bgp_intent


@register
class BgpSessionDown(Check):
    """A BGP session of the host's BIRD (Calico's) is not Established: the routes to the
    blocks that peer announces are not learnt, and this node's are not announced to it"""

    id = "bgp-session-down"
    severity = "error"
    scope = "host"
    tags = ("overlay", "bgp", "routing")

    def run(self, ctx):
        bgp = bgp_intent(ctx.host)
        if bgp is None or not bgp["sessions"]:
            return
        birdcl = "birdcl" + (f" -s {bgp['socket']}" if bgp["socket"] else "")
        for s in bgp["sessions"]:
            if s["bgp_state"] == "Established":
                continue
            state = s["bgp_state"] or s["state"]
            why = f" (last error: {s['last_error']})" if s["last_error"] else ""
            # Down with no error: switched off (`disable`, or `disabled;` in its configuration)
            disabled = s["state"] == "down" and not s["last_error"]
            yield self.finding(
                ctx, f"{ctx.vars['host_ns']}: BIRD's BGP session {s['name']} with "
                     f"{s['neighbor'] or '?'} is {state}{why}"
                     f"{', switched off on this node' if disabled else ''}: the routes to "
                     f"the blocks that node announces are not learnt here, and this node's "
                     f"blocks are not announced to it",
                {"session": s["name"], "neighbor": s["neighbor"], "state": s["state"],
                 "bgp_state": s["bgp_state"], "last_error": s["last_error"],
                 "socket": bgp["socket"], "intent": bgp["source"]},
                "{in_host}{birdcl} " + ("enable {session}" if disabled else
                                        "show protocols all {session}"),
                verify=not disabled, session=s["name"], neighbor=s["neighbor"] or "?",
                birdcl=birdcl)
