#!/usr/bin/env bash
# Boots a Debian kernel package's kernel under QEMU with the host's root
# file system (virtme-ng), runs one command in it as root, and powers off.
#
#   boot.sh KERNEL_DIR RWDIR CONSOLE_LOG COMMAND
#
# KERNEL_DIR is a kernel package extracted by `cargo xtask setup --tests`
# (target/guest-kernels/6.1: boot/vmlinuz-* and its lib/modules); virtme-ng
# finds the modules beside the image and links them into the guest's
# /lib/modules, so `modprobe` works there. RWDIR is the one host directory
# the guest may write; the rest of the host's root is read-only in the guest.
# COMMAND is a shell command line. Everything the guest prints (the kernel's
# messages and the command's output) goes to CONSOLE_LOG. The exit code is
# the command's, or 125 when the guest did not run it.
#
# Software emulation (TCG): nested KVM hangs at boot on the machines this
# runs on, and QEMU 7.2 with `-cpu host` stops on MSR 0x10a. The guest gets
# 2 CPUs and 2 GiB; virtme-ng is the pinned one in target/virtme-ng.
set -euo pipefail

[ $# -eq 4 ] || { echo "usage: boot.sh KERNEL_DIR RWDIR CONSOLE_LOG COMMAND" >&2; exit 2; }
kdir=$1 rwdir=$2 console=$3 cmd=$4
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
venv=${SCTPMON_VIRTME_NG:-$repo/target/virtme-ng}
[ -x "$venv/bin/vng" ] || { echo "boot.sh: $venv/bin/vng missing: run cargo xtask setup --tests" >&2; exit 2; }
command -v qemu-system-x86_64 >/dev/null || { echo "boot.sh: qemu-system-x86_64 missing: run cargo xtask setup --tests" >&2; exit 2; }
shopt -s nullglob
images=("$kdir"/boot/vmlinuz-*)
[ ${#images[@]} -eq 1 ] || { echo "boot.sh: expected one $kdir/boot/vmlinuz-*" >&2; exit 2; }
mkdir -p "$rwdir"
# vng runs virtme-run from PATH. Its own exit code does not carry the
# command's (the guest has no udev, so the command's output and status take
# the console): the status is read from virtme-ng-init's last words.
rc=0
PATH=$venv/bin:$PATH "$venv/bin/vng" --verbose --run "${images[0]}" --disable-kvm --user root \
	--cpus 2 --memory 2G --force-9p --rwdir "$rwdir" --exec "$cmd" </dev/null >"$console" 2>&1 || rc=$?
status=$(sed -n 's/.*virtme-ng-init: script exited with code \([0-9]*\).*/\1/p' "$console" | tail -1)
if [ -z "$status" ]; then
	echo "boot.sh: the guest did not run the command (vng exited with $rc); see $console" >&2
	exit 125
fi
exit "$status"
