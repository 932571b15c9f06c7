#!/usr/bin/env bash
# Install what k8s-runbooks needs on a fresh Debian/Ubuntu machine (as root): Debian packages
# for the lab, a virtualenv in .venv, and the project with its pinned dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(python3 python3-venv python3-pip podman runc debootstrap iproute2 iptables nftables ipset
      conntrack etcd-server etcd-client openssh-client ca-certificates systemd)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing Debian packages: ${missing[*]} (run as root to install them)" >&2
    exit 2
  fi
  echo "installing Debian packages: ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # the package's own etcd would listen on the host's 2379: the lab runs etcd inside its nodes
  if systemctl is-enabled etcd >/dev/null 2>&1; then systemctl disable --now etcd >/dev/null 2>&1 || true; fi
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)
if [ ! -e "$stamp" ]; then
  .venv/bin/pip install -q --upgrade pip >/dev/null
  .venv/bin/pip install -q -e '.[test]'
  rm -f .venv/.installed-*
  touch "$stamp"
fi
