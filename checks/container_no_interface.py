from . import Check, register


@register
class ContainerNoInterface(Check):
    """The container has no network interface besides loopback"""

    id = "container-no-interface"
    severity = "error"
    scope = "container"
    tags = ("link", "path")
    blocks_at = (("request", None),)
    precedence = 0
    structural = True

    def run(self, ctx):
        if any(not l.is_loopback for l in ctx.namespace.links):
            return
        mode = ctx.container.target.get("network_mode")
        by_design = mode == "none"
        # The runtime's default network; another namespace's interfaces are whoever made
        # them (CNI, a script): shown, not guessed at.
        engine = ctx.container.target.get("kind")
        default = {"docker": "bridge", "podman": "podman"}.get(engine)
        yield self.finding(
            ctx, f"{ctx.subject} has only lo" + (
                " (it was started with --network none, so this is by design)" if by_design
                else ": it cannot reach anything"),
            {"links": [l.name for l in ctx.namespace.links], "network_mode": mode},
            f"{engine} network connect {default} {{container_name}}" if default
            else "{in_container}ip -br link", verify=default is None,
            severity="info" if by_design else None)
