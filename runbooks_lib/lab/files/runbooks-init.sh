#!/bin/sh
# PID 1 of a runbooks lab node: guard the host's global kernel settings, then hand over to systemd.
# A privileged node shares the host kernel: only net.* sysctls are the node's own (its network
# namespace), so /proc/sys is made read-only except /proc/sys/net, and /sys read-only (cgroup
# submounts stay writable for systemd and containerd). Host keys are made on first boot so that
# every node has its own.
set -eu
mount --bind /proc/sys /proc/sys
mount --bind /proc/sys/net /proc/sys/net
mount -o remount,bind,ro /proc/sys
for p in /proc/sysrq-trigger /proc/irq /proc/bus; do
  if [ -e "$p" ]; then mount --bind "$p" "$p" && mount -o remount,bind,ro "$p"; fi
done
mount -o remount,bind,ro /sys
if [ ! -s /etc/ssh/ssh_host_ed25519_key ]; then ssh-keygen -A >/dev/null; fi
exec /sbin/init "$@"
