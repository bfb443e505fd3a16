#!/usr/bin/env bash
# Install netdoctor and the system programs it (and its lab and tests) use, on Debian/Ubuntu.
#   ./install.sh          the tool: apt packages + `pip install .`
#   ./install.sh --dev    also the test dependencies, installed editable from this checkout
set -euo pipefail
cd "$(dirname "$0")"

dev=0
for arg in "$@"; do
  case "$arg" in
    --dev) dev=1 ;;
    -h|--help) sed -n '2,4p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done

if [ "$(id -u)" -ne 0 ]; then
  echo "install.sh: run as root (netdoctor reads other network namespaces)" >&2
  exit 5
fi

# program -> Debian package
declare -A need=(
  [ip]=iproute2 [iptables]=iptables [nft]=nftables [tcpdump]=tcpdump [dnsmasq]=dnsmasq-base
  [conntrack]=conntrack [nsenter]=util-linux [sysctl]=procps [ss]=iproute2 [ethtool]=ethtool
)
if [ "$dev" = 1 ]; then
  need+=([dockerd]=docker.io [podman]=podman [runc]=runc [busybox]=busybox-static
         [sshd]=openssh-server [ssh]=openssh-client [bird]=bird2 [birdcl]=bird2
         [ufw]=ufw)
fi
missing=()
for prog in "${!need[@]}"; do
  command -v "$prog" >/dev/null 2>&1 || missing+=("${need[$prog]}")
done
python3 -m pip --version >/dev/null 2>&1 || missing+=(python3-pip)
# busybox-static, not busybox: the test images are made of a static binary.
if [ "$dev" = 1 ] && ! dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q "ok installed"; then
  missing+=(busybox-static)
fi
# The real CNI plugins the live tests wire pods with (not a program on PATH).
if [ "$dev" = 1 ] && [ ! -x /usr/lib/cni/ptp ]; then
  missing+=(containernetworking-plugins)
fi
if [ "${#missing[@]}" -gt 0 ]; then
  pkgs=$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')
  echo "install.sh: apt-get install $pkgs"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q $pkgs >/dev/null
fi

export PIP_ROOT_USER_ACTION=ignore
pip_flags=(-q --disable-pip-version-check)
if python3 -c 'import sys, sysconfig, os; sys.exit(0 if os.path.exists(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")) else 1)'; then
  pip_flags+=(--break-system-packages)
fi
if [ "$dev" = 1 ]; then
  python3 -m pip install "${pip_flags[@]}" -e ".[test]"
else
  python3 -m pip install "${pip_flags[@]}" .
fi
echo "install.sh: netdoctor $(netdoctor --version | cut -d' ' -f2) installed at $(command -v netdoctor)"
