from . import Check, register

# The kernel's neighbour tables and the sysctls that size them (the machine's, in its first
# network namespace only).
TABLES = (("arp_cache", "ipv4", "ARP"), ("ndisc_cache", "ipv6", "neighbour discovery"))


def _bigger(table: dict) -> tuple:
    """(gc_thresh1, gc_thresh2, gc_thresh3) with room: thresh3 a power of two at least four
    times the entries and twice what it was."""
    want = max(2 * table["thresh3"], 4 * table.get("entries", 0), 1024)
    thresh3 = 1 << (want - 1).bit_length()
    return max(table.get("thresh1") or 0, thresh3 // 8), thresh3 // 2, thresh3


@register
class NeighbourTableFull(Check):
    """The kernel's neighbour table is full: new neighbours cannot be resolved"""

    id = "neighbour-table-full"
    severity = "error"
    scope = "host"
    tags = ("arp", "neighbour", "path")
    # Judged after the DNS probe, whose queries resolve every container's next hop: the
    # tables are read again once its answers are in (snapshot._Answers).
    needs = ("dns-probe",)

    def run(self, ctx):
        tables = ctx.host.neighbour_tables or {}
        # One table for the whole machine: said once, by the first host with containers.
        hosts = sorted(int(k) for k, h in ctx.snapshot.hosts.items() if h.neighbour_tables)
        with_containers = {c.host_inode for c in ctx.snapshot.containers}
        first = next((i for i in hosts if i in with_containers), hosts[0] if hosts else None)
        if ctx.inode != first:
            return
        for name, family, protocol in TABLES:
            t = tables.get(name)
            if not t or not t.get("thresh3") or "entries" not in t:
                continue
            entries, thresh2, thresh3 = t["entries"], t.get("thresh2") or 0, t["thresh3"]
            during = t.get("table_fulls_during_run", 0)
            if during:
                why = (f"the kernel refused {during} new {protocol} entr"
                       f"{'y' if during == 1 else 'ies'} while netdoctor ran")
                severity = "error"
            elif entries >= thresh3 and t.get("table_fulls"):
                why = f"it refused {t['table_fulls']} new entries since boot"
                severity = "error"
            elif thresh2 and entries > thresh2:
                why = ("above gc_thresh2 the kernel throws entries away every few seconds, "
                       "and at gc_thresh3 it refuses new ones")
                severity = "warning"
            else:
                continue
            t1, t2, t3 = _bigger(t)
            key = f"net.{family}.neigh.default.gc_thresh"
            yield self.finding(
                ctx, f"the machine's {protocol} table holds {entries} entries of at most "
                     f"{thresh3} (gc_thresh3, every namespace's entries together): {why}. A "
                     "container whose gateway gets no entry cannot send at all",
                {"table": name, "entries": entries, "gc_thresh1": t.get("thresh1"),
                 "gc_thresh2": thresh2, "gc_thresh3": thresh3,
                 "table_fulls_since_boot": t.get("table_fulls"),
                 "table_fulls_during_run": during,
                 "forced_gc_runs": t.get("forced_gc_runs")},
                # The limits exist only in the machine's first namespace: no prefix.
                f"sysctl -w {key}1={t1} {key}2={t2} {key}3={t3}", severity=severity,
                table=name, family=family, entries=entries, thresh1=t.get("thresh1"),
                thresh2=thresh2, thresh3=thresh3, new_thresh3=t3, sysctl_key=key)
