"""--redact: public addresses and the report's host names become stable placeholders;
private, loopback and link-local addresses and everything else stay as they were."""

import json

from netdoctor.diagnose.report.redact import Redactor, is_public
import snapshot_edits as E
from sandbox import netdoctor



def test_what_counts_as_public():
    for a in ("8.8.8.8", "203.0.113.80", "198.51.100.1", "2001:db8::1", "2606:4700::1111"):
        assert is_public(a), a
    for a in ("10.1.2.3", "172.17.0.2", "192.168.1.1", "100.64.0.1", "127.0.0.1",
              "169.254.1.1", "0.0.0.0", "224.0.0.1", "fe80::1", "fd00::1", "::1", "x"):
        assert not is_public(a), a


def test_placeholders_are_stable_and_numbered_in_order():
    r = Redactor(["www.example.net", "build-host-7"])
    out = r.text("build-host-7: www.example.net is 203.0.113.80; 172.17.0.2 -> 203.0.113.80 "
                 "(snat 198.51.100.2/24), WWW.EXAMPLE.NET again; dns 2001:db8::53")
    assert out == ("HOST-2: HOST-1 is PUBLIC-IP-1; 172.17.0.2 -> PUBLIC-IP-1 "
                   "(snat PUBLIC-IP-2/24), HOST-1 again; dns PUBLIC-IP6-1")


def test_lookalikes_are_left_alone():
    text = ("net.ipv4.ip_forward=1 runbooks/nat-missing.md kernel 6.1.0-18 "
            "at 03:26:07 mac aa:bb:cc:dd:ee:ff version 1.2.3.4.5 rule 10")
    assert Redactor(["example.com"]).text(text) == text


def test_checks_from_a_snapshot_redacted_stays_valid_json(tmp_path, healthy_lab):
    # The recorded lab with its uplink down: findings that name public addresses.
    snap = E.edit_host_ns(healthy_lab, lambda ns: E.without_flag(ns, "eth0"))
    path = tmp_path / "snap.json"
    path.write_text(json.dumps(snap.to_dict()))
    plain = netdoctor("checks", "--from", str(path), "--format", "json")
    red = netdoctor("checks", "--from", str(path), "--format", "json", "--redact")
    assert red.returncode == plain.returncode == 1
    assert "198.51.100." in plain.stdout  # there was something to redact
    doc = json.loads(red.stdout)
    assert "203.0.113." not in red.stdout and "198.51.100." not in red.stdout
    assert "PUBLIC-IP-1" in red.stdout
    assert [f["id"] for f in doc["findings"]] == [f["id"] for f in json.loads(plain.stdout)
                                                 ["findings"]]
    md = netdoctor("checks", "--from", str(path), "--format", "markdown", "--redact").stdout
    assert "198.51.100." not in md and "PUBLIC-IP-" in md


def test_redact_refuses_pcaps():
    res = netdoctor("trace", "lab:test", "203.0.113.80", "--redact", "--pcap-dir", "/tmp/x")
    assert res.returncode == 2 and "cannot redact packet captures" in res.stderr
