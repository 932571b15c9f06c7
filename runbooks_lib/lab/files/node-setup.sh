#!/bin/sh
# Runs once inside the debootstrapped rootfs (chroot) to turn it into a lab node image.
set -eu
export DEBIAN_FRONTEND=noninteractive LC_ALL=C

# the non-root sudo user (fixed uid so files can be prepared with the right owner)
if ! id runbooks >/dev/null 2>&1; then useradd -m -u 1500 -U -s /bin/bash runbooks; fi
usermod -p '*' runbooks            # no password, not locked: key login only
printf 'runbooks ALL=(ALL) NOPASSWD:ALL\n' > /etc/sudoers.d/runbooks
chmod 0440 /etc/sudoers.d/runbooks
install -d -m 0700 -o runbooks -g runbooks /home/runbooks/.ssh
install -d -m 0700 /root/.ssh

# sshd: keys only; host keys are generated per node on first boot (runbooks-init)
mkdir -p /etc/ssh/sshd_config.d
cat > /etc/ssh/sshd_config.d/runbooks-lab.conf <<'CONF'
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UseDNS no
MaxStartups 100:30:200
CONF
rm -f /etc/ssh/ssh_host_*

# chrony never steps or slews the (shared) clock: -x; sources are set per lab at `up`
if [ -f /etc/default/chrony ]; then
  sed -i 's/^DAEMON_OPTS=.*/DAEMON_OPTS="-x"/' /etc/default/chrony
fi
sed -i 's/^\(pool\|server\) /#runbooks-lab: no internet time source: &/' /etc/chrony/chrony.conf
mkdir -p /etc/systemd/system/chrony.service.d
printf '[Unit]\n# -x needs no CAP_SYS_TIME (dropped in lab nodes)\nConditionCapability=\n' \
  > /etc/systemd/system/chrony.service.d/runbooks-lab.conf

# etcd: the package's unit stays off; the lab writes its own TLS unit on the control plane
systemctl disable etcd.service >/dev/null 2>&1 || true
install -d -m 0700 -o root -g root /var/lib/etcd
rm -rf /var/lib/etcd/* 2>/dev/null || true

# units that make no sense in a container or would touch host-global state
for u in systemd-sysctl.service systemd-modules-load.service systemd-udevd.service \
         systemd-udev-trigger.service systemd-udev-settle.service systemd-hwdb-update.service \
         systemd-binfmt.service proc-sys-fs-binfmt_misc.automount proc-sys-fs-binfmt_misc.mount \
         sys-kernel-config.mount sys-kernel-debug.mount sys-kernel-tracing.mount sys-fs-fuse-connections.mount \
         systemd-timesyncd.service systemd-random-seed.service systemd-firstboot.service \
         getty.target console-getty.service getty@tty1.service serial-getty@.service \
         apt-daily.timer apt-daily-upgrade.timer man-db.timer e2scrub_all.timer fstrim.timer \
         dpkg-db-backup.timer systemd-journald-audit.socket cryptsetup.target; do
  ln -sf /dev/null "/etc/systemd/system/$u"
done
systemctl enable ssh.service chrony.service >/dev/null 2>&1 || true
systemctl set-default multi-user.target >/dev/null 2>&1 || true

# a per-node machine-id is made by systemd at boot
: > /etc/machine-id
rm -f /var/lib/dbus/machine-id
apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/*.log /tmp/* || true
