from . import Check, register

FEATURE = "tx-checksum-ip-generic"


@register
class VxlanChecksumOffload(Check):
    """A VXLAN device offloads its checksums and the host counts UDP checksum errors: the
    known kernel trap behind overlay connections that stall for about a minute"""

    id = "vxlan-checksum-offload"
    severity = "warning"
    scope = "host"
    tags = ("overlay", "vxlan", "offload")

    def run(self, ctx):
        offloads = ctx.host.offloads or {}
        errors = offloads.get("udp_in_csum_errors")
        if not errors:
            return  # offloading is the default and usually right: only the errors say so
        for dev, features in sorted((offloads.get("features") or {}).items()):
            if features.get(FEATURE) != "on":
                continue
            yield self.finding(
                ctx, f"{dev} has {FEATURE} on and {ctx.subject} has counted {errors} UDP "
                     f"checksum error(s) (Udp InCsumErrors): the known trap of kernel VXLAN "
                     f"checksum offload, where encapsulated packets leave with a wrong checksum "
                     f"and the receiver drops them (connections through the overlay stall, "
                     f"typically 63 s, until a retransmission goes out unoffloaded)",
                {"device": dev, FEATURE: "on", "udp_in_csum_errors": errors},
                f"{{in_host}}ethtool -K {dev} {FEATURE} off", device=dev)
