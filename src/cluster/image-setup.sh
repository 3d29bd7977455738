#!/bin/bash
# Runs once inside the freshly bootstrapped rootfs (chroot). Everything here becomes part of the
# cache key, so a change to this file rebuilds the image.
set -euo pipefail

# Our roles run coturn as orama-namespace-turn@NS; Debian's own unit would grab 3478 first.
systemctl mask coturn.service >/dev/null 2>&1
# The same for Knot: roles/dns runs it as orama-dns.service with our config.
systemctl mask knot.service >/dev/null 2>&1
# And Caddy: roles/front runs it as orama-front.service (Debian's caddy.service would hold :80/:443).
systemctl mask caddy.service >/dev/null 2>&1

# Nodes have no route to a mirror: apt's timers would fail and leave the system "degraded".
systemctl mask apt-daily.timer apt-daily-upgrade.timer >/dev/null 2>&1

# The harness gives every node its own identity before its first boot.
rm -f /etc/ssh/ssh_host_* /etc/hostname /var/lib/dbus/machine-id
: > /etc/machine-id
mkdir -p /var/lib/dbus && ln -s /etc/machine-id /var/lib/dbus/machine-id

cat > /etc/ssh/sshd_config.d/orama-test-cluster.conf <<'CONF'
# Only the ed25519 key is generated per node; without this sshd logs errors for the others.
HostKey /etc/ssh/ssh_host_ed25519_key
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
CONF
systemctl enable ssh.service >/dev/null 2>&1

# Same user as a debian/bookworm64 Vagrant box, so one playbook/inventory shape serves both.
useradd --create-home --shell /bin/bash --user-group vagrant
echo 'vagrant ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/vagrant
chmod 0440 /etc/sudoers.d/vagrant
install -d -m 0700 /root/.ssh
install -d -m 0700 -o vagrant -g vagrant /home/vagrant/.ssh

# Persistent journal: readable from the host with `journalctl -D <node>/root/var/log/journal`
# (there is no machined, so no `journalctl -M`).
mkdir -p /var/log/journal

apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/*.log
