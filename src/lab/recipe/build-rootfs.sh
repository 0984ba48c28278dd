#!/bin/sh
# Builds the lab node's root filesystem: Debian bookworm by debootstrap from the mirror the
# caller passes (read from this machine's apt sources), with the packages a lab node needs,
# then the container tweaks. Usage: build-rootfs.sh FLAVOR MIRROR ROOTFS_DIR
# FLAVOR is systemd or sysvinit. Progress goes to stderr as "stage: ..." lines.
set -eu
flavor=$1 mirror=$2 root=$3
common="openssh-server nginx haproxy apache2 heartbeat keepalived iproute2 iputils-ping iputils-arping curl procps nftables tcpdump python3 ca-certificates kmod"
case "$flavor" in
  systemd) init=systemd,systemd-sysv,dbus ;;
  sysvinit) init=sysvinit-core,sysv-rc,initscripts,orphan-sysvinit-scripts ;;
  *) echo "unknown flavor $flavor" >&2; exit 2 ;;
esac
echo "stage: debootstrap bookworm from $mirror ($flavor)" >&2
# Only the base and the init here: debootstrap's simple resolver picks wrong alternatives
# (inetutils-ping for `ping`), so apt installs everything else below.
exclude=""
[ "$flavor" = sysvinit ] && exclude="--exclude=systemd-sysv"
debootstrap --variant=minbase $exclude --include="$init" bookworm "$root" "$mirror" >&2
# No daemon may start inside the chroot while we configure it.
printf '#!/bin/sh\nexit 101\n' > "$root/usr/sbin/policy-rc.d"; chmod 755 "$root/usr/sbin/policy-rc.d"
echo "deb $mirror bookworm main" > "$root/etc/apt/sources.list"
mount -t proc proc "$root/proc"
trap 'umount "$root/proc" 2>/dev/null || true' EXIT
echo "stage: installing nginx, haproxy, apache2, heartbeat, keepalived, sshd and tools" >&2
chroot "$root" apt-get -qq update >&2
DEBIAN_FRONTEND=noninteractive chroot "$root" apt-get -qq -y --no-install-recommends install $common >&2
umount "$root/proc"; trap - EXIT
echo "stage: configuring the node" >&2
# apache2 and nginx both want port 80: apache2 moves to 8080 so both can run.
sed -i 's/^Listen 80$/Listen 8080/' "$root/etc/apache2/ports.conf"
sed -i 's/<VirtualHost \*:80>/<VirtualHost *:8080>/' "$root/etc/apache2/sites-available/000-default.conf"
# The page names the node that served it: the drills and tests see who answered.
cat > "$root/usr/local/sbin/lab-node-init" <<'INIT'
#!/bin/sh
# Per-boot node setup: host keys (never baked into the image), and a page naming this node.
ssh-keygen -A >/dev/null 2>&1
echo "$(uname -n)" > /var/www/html/index.html
mkdir -p /run/sshd
INIT
chmod 755 "$root/usr/local/sbin/lab-node-init"
rm -f "$root"/etc/ssh/ssh_host_*
# Each container gets its own machine-id at first boot.
: > "$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id"
if [ "$flavor" = systemd ]; then
  cat > "$root/etc/systemd/system/lab-node-init.service" <<'UNIT'
[Unit]
Description=hadeploy lab: per-boot node setup
Before=ssh.service nginx.service
After=local-fs.target
[Service]
Type=oneshot
ExecStart=/usr/local/sbin/lab-node-init
[Install]
WantedBy=multi-user.target
UNIT
  chroot "$root" systemctl enable lab-node-init.service >/dev/null 2>&1
  chroot "$root" systemctl disable heartbeat.service keepalived.service >/dev/null 2>&1 || true
  # Units that cannot work in a container and only add noise or delay.
  for u in systemd-udevd.service systemd-udevd-control.socket systemd-udevd-kernel.socket \
           getty@tty1.service console-getty.service systemd-resolved.service \
           systemd-timesyncd.service apt-daily.timer apt-daily-upgrade.timer e2scrub_reap.service; do
    ln -sf /dev/null "$root/etc/systemd/system/$u"
  done
else
  cat > "$root/etc/init.d/lab-node-init" <<'SCRIPT'
#!/bin/sh
### BEGIN INIT INFO
# Provides:          lab-node-init
# Required-Start:    $local_fs
# Required-Stop:
# X-Start-Before:    ssh nginx
# Default-Start:     2 3 4 5
# Default-Stop:
# Short-Description: hadeploy lab per-boot node setup
### END INIT INFO
[ "$1" = start ] && /usr/local/sbin/lab-node-init
exit 0
SCRIPT
  chmod 755 "$root/etc/init.d/lab-node-init"
  chroot "$root" update-rc.d lab-node-init defaults >/dev/null 2>&1
  chroot "$root" update-rc.d heartbeat disable >/dev/null 2>&1 || true
  chroot "$root" update-rc.d keepalived disable >/dev/null 2>&1 || true
  # A container has no consoles to run getty on.
  sed -i '/getty/s/^\([^#]\)/#\1/' "$root/etc/inittab"
fi
rm -f "$root/usr/sbin/policy-rc.d"
chroot "$root" apt-get clean >/dev/null 2>&1
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin
echo "stage: rootfs ready" >&2
