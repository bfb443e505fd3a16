from . import Check, register


@register
class IptablesBackendSplit(Check):
    """Rules live in both iptables-legacy and iptables-nft: one set is invisible to the other tool"""

    id = "iptables-backend-split"
    severity = "warning"
    scope = "host"
    tags = ("netfilter",)
    needs = ("host-rules",)

    def run(self, ctx):
        rs = ctx.ruleset
        legacy = rs.rule_count("iptables-legacy")
        nft = rs.rule_count("iptables-nft") + rs.rule_count("nft")
        if legacy and nft:
            tables = sorted({f"{c.family} {c.table}" for c in rs.chains
                             if c.backend == "iptables-legacy" and c.rules})
            yield self.finding(
                ctx, f"{ctx.subject} has {legacy} iptables-legacy rules ({', '.join(tables)}) "
                     f"beside {nft} nf_tables rules: both are enforced, but each tool shows "
                     f"only its own",
                {"legacy_rules": legacy, "nft_rules": nft, "legacy_tables": tables},
                "{in_host}iptables-legacy-save > legacy.rules  # then move them to one backend")
