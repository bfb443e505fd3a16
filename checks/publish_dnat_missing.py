from . import Check, register
from ._inbound import port_name, port_vars
from netdoctor.diagnose.reason.inbound import host_port


@register
class PublishDnatMissing(Check):
    """The runtime publishes a port, but no DNAT rule (or a stale one) carries it to the
    container"""

    id = "publish-dnat-missing"
    severity = "error"
    scope = "host"
    runs_on = "container"
    tags = ("inbound", "nat")
    precedence = 15
    needs = ("host-rules",)

    def run(self, ctx):
        for w in ctx.inbound:
            if w.source != "runtime" or w.dropped:
                continue
            if w.proxied:
                if w.proxy and not w.published:  # an outside client's, served all the same
                    yield self._proxied(ctx, w)
                continue
            if w.published and not w.dnat_elsewhere:
                continue
            if w.dnat_elsewhere:
                where = host_port(ctx.address, w.container_port) if w.container_port \
                    else ctx.address
                why = (f"its DNAT goes to {w.dnat_to}, not to the container's "
                       f"{where} ({w.dnat_rule}): a stale rule")
            else:
                why = "no DNAT rule carries it there (a firewall reload flushes Docker's chains)"
            kind = ctx.container.target.get("kind")
            # Restarting the container makes its runtime write the port's rules again.
            fix = {"docker": "docker restart {container_name}",
                   "podman": "podman restart {container_name}",
                   "lab": "netdoctor lab heal"}.get(kind)
            yield self.finding(
                ctx, f"{ctx.subject} publishes {port_name(w)}, but {why}",
                {"walk": w.to_dict()},
                fix or "{in_host}iptables-save -t nat | grep -n DNAT", verify=fix is None,
                **port_vars(w))

    def _proxied(self, ctx, w):
        """No DNAT, and the runtime's userland proxy serves an outside client instead: it
        works, but the container sees every client as the host's bridge address (no source
        to log or filter by), and each connection costs a copy through the proxy."""
        kind = ctx.container.target.get("kind")
        fix = {"docker": "docker restart {container_name}"}.get(kind)
        return self.finding(
            ctx, f"{ctx.subject} publishes {port_name(w)}, but no DNAT rule carries it there: "
                 f"{w.proxy} on {w.proxied} serves outside clients instead, so the container "
                 f"sees each of them as the host's own address (a firewall reload flushes "
                 f"Docker's chains)",
            {"walk": w.to_dict()},
            fix or "{in_host}iptables-save -t nat | grep -n DNAT", verify=fix is None,
            severity="warning", **port_vars(w))
