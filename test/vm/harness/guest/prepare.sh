#!/bin/bash
# rlvm-prepare: the guest's first boot (kernel command line rlvm.prepare), on the plain ext4 root image
# with a blank second disk. Builds the volume group the VM tier tests on, copies the running root onto
# vg0/lv_root, and powers off. Later boots use root=/dev/mapper/vg0-lv_root and only the LVM disk.
#
#     vg0 (the whole second disk)
#       lv_root    ext4  /            the running root: lv_root jobs
#       lv_data    ext4  /data        lv_nonroot jobs
#       lv_xfs     xfs   /srv/xfs     lv_nonroot on XFS (nouuid)
#       lv_backup  ext4  /srv/backup  the restic repositories, outside every snapshotted LV
#       free space for snapshots
#
# Run from the third disk by the image's rlvm-prepare service (customize.sh); lvcreate -W y wipes any
# signature, and the disk is blank anyway. Prints RLVM-PREPARE-OK or RLVM-PREPARE-FAILED on the console; the harness waits for one of them.
set -euo pipefail
trap 'echo "RLVM-PREPARE-FAILED at line $LINENO"; systemctl poweroff --no-block' ERR
echo "rlvm-prepare: start"
udevadm settle
disk=""
for candidate in /dev/vdb /dev/sdb; do
  if [[ -b $candidate ]]; then disk=$candidate; break; fi
done
[[ -n $disk ]]
pvcreate -ff -y "$disk"
vgcreate vg0 "$disk"
lvcreate -y -W y -L 1400M -n lv_root vg0
lvcreate -y -W y -L 256M -n lv_data vg0
lvcreate -y -W y -L 320M -n lv_xfs vg0
lvcreate -y -W y -L 640M -n lv_backup vg0
# What is left, about 1.4 GB, stays free for the snapshots of the tests.
udevadm settle
mkfs.ext4 -q -L root /dev/vg0/lv_root
mkfs.ext4 -q -L data /dev/vg0/lv_data
mkfs.xfs -q -L xfs /dev/vg0/lv_xfs
mkfs.ext4 -q -L backup /dev/vg0/lv_backup
mount /dev/vg0/lv_root /mnt
cp -ax /. /mnt/
cat >/mnt/etc/fstab <<'FSTAB'
/dev/mapper/vg0-lv_root   /            ext4  errors=remount-ro  0 1
/dev/mapper/vg0-lv_data   /data        ext4  defaults           0 2
/dev/mapper/vg0-lv_xfs    /srv/xfs     xfs   defaults           0 2
/dev/mapper/vg0-lv_backup /srv/backup  ext4  defaults           0 2
FSTAB
mkdir -p /mnt/data /mnt/srv/xfs /mnt/srv/backup
rm -f /mnt/etc/systemd/system/multi-user.target.wants/rlvm-prepare.service
umount /mnt
sync
vgs
lvs
echo "RLVM-PREPARE-OK"
systemctl poweroff --no-block
