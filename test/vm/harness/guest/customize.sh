#!/bin/bash
# Customises the guest's root tree after mmdebstrap, on the build machine, as root, without any mount:
#
#     customize.sh ROOTFS CLIENT_PUBKEY_FILE HOST_KEY_DIR
#
# ROOTFS is the tree mmdebstrap made; CLIENT_PUBKEY_FILE the test's public key (authorized for the login
# user); HOST_KEY_DIR receives the guest's sshd host key pair, generated here so that the test's
# known_hosts is known before the guest ever boots. This file's text is part of the image recipe: any
# change to it builds a new image.
set -euo pipefail
root=$1 pubkey=$2 hostkeys=$3
login=rlvmvm
name=rlvm-vm

# Identity: a hostname that resolves (sudo complains on every call otherwise).
echo "$name" >"$root/etc/hostname"
cat >"$root/etc/hosts" <<HOSTS
127.0.0.1 localhost
127.0.1.1 $name
::1 localhost ip6-localhost ip6-loopback
HOSTS

# The login user (Debian already has a system user named "backup"): passwordless sudo, the test's key.
chroot "$root" useradd --create-home --shell /bin/bash "$login"
install -d -m 0700 "$root/home/$login/.ssh"
install -m 0600 "$pubkey" "$root/home/$login/.ssh/authorized_keys"
chroot "$root" chown -R "$login:$login" "/home/$login/.ssh"
printf '%s ALL=(ALL:ALL) NOPASSWD: ALL\n' "$login" >"$root/etc/sudoers.d/$login"
chmod 0440 "$root/etc/sudoers.d/$login"

# sshd: one ed25519 host key made now, keys only, no DNS lookups.
rm -f "$root"/etc/ssh/ssh_host_*
ssh-keygen -q -t ed25519 -N '' -C "root@$name" -f "$root/etc/ssh/ssh_host_ed25519_key"
cp "$root/etc/ssh/ssh_host_ed25519_key.pub" "$hostkeys/ssh_host_ed25519_key.pub"
cat >"$root/etc/ssh/sshd_config.d/rlvm-vm.conf" <<'SSHD'
HostKey /etc/ssh/ssh_host_ed25519_key
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
SSHD

# Networking: eth0 (net.ifnames=0) by DHCP from qemu's user-mode network; nothing waits for it.
mkdir -p "$root/etc/systemd/network"
cat >"$root/etc/systemd/network/20-eth0.network" <<'NET'
[Match]
Name=eth0

[Network]
DHCP=ipv4
NET
chroot "$root" systemctl enable systemd-networkd.service
chroot "$root" systemctl mask systemd-networkd-wait-online.service

# Boot faster under TCG: no timers that wake apt, scrub or trim during a test run.
for unit in apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service fstrim.timer \
  dpkg-db-backup.timer getty@tty1.service; do
  chroot "$root" systemctl mask "$unit"
done

# The restic password of the test repositories: root's only.
install -d -m 0700 "$root/etc/rlvm-test"
printf 'correct horse battery staple\n' >"$root/etc/rlvm-test/restic-password"
chmod 0600 "$root/etc/rlvm-test/restic-password"

# First boot (kernel command line rlvm.prepare): run the script on the third disk (prepare.sh, padded
# with NULs to a sector boundary), which moves the root filesystem onto LVM and powers off. The script
# is not part of the image, so changing it re-prepares the disk without rebuilding the image.
cat >"$root/usr/local/sbin/rlvm-prepare" <<'PREPARE'
#!/bin/sh
set -eu
udevadm settle
tr -d '\000' </dev/vdc >/run/rlvm-prepare.sh
exec bash /run/rlvm-prepare.sh
PREPARE
chmod 0755 "$root/usr/local/sbin/rlvm-prepare"
cat >"$root/etc/systemd/system/rlvm-prepare.service" <<'UNIT'
[Unit]
Description=rlvm-fleet VM tier: put the root filesystem on LVM, then power off
ConditionKernelCommandLine=rlvm.prepare
After=local-fs.target systemd-udevd.service
Wants=systemd-udevd.service

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/rlvm-prepare
StandardOutput=journal+console
StandardError=journal+console

[Install]
WantedBy=multi-user.target
UNIT
chroot "$root" systemctl enable rlvm-prepare.service

# Smaller root, faster copy onto the LV: no docs, no package lists, no drivers a qemu guest never loads.
rm -rf "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/locale/* "$root"/usr/share/info/*
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb
for modules in "$root"/usr/lib/modules/*; do
  kernel=$modules/kernel
  rm -rf "$kernel"/sound "$kernel"/drivers/{gpu,media,infiniband,iio,staging,usb,hwmon,hid,scsi,bluetooth,isdn} \
    "$kernel"/drivers/net/{wireless,ethernet,usb,can,wwan} "$kernel"/net/{wireless,bluetooth,mac80211}
  chroot "$root" depmod "${modules##*/}"
done
# The kernel and initrd boot from outside the guest (qemu -kernel/-initrd); the harness takes them.
