#!/usr/bin/env bash
# Makes the two base images deploy/Dockerfile is built from in
# tests/image.rs, without Docker Hub (only Debian's mirror is reachable
# here):
#   localhost/sctp-monitor-base:bookworm   debootstrap --variant=minbase bookworm
#   localhost/sctp-monitor-rust:bookworm   that + this machine's rustup, stable
#                                          toolchain, the pinned nightly and
#                                          bpf-linker, laid out as in the
#                                          official rust image (/usr/local/...)
# The Dockerfile's `cargo xtask setup` still checks every pin in it.
# Idempotent: an image that exists is kept. Needs root, podman, buildah,
# debootstrap.
set -euo pipefail
nightly=$1   # e.g. nightly-2026-05-20
work=${SCTPMON_IMAGE_WORK:-/var/tmp/sctp-monitor-image}
mkdir -p "$work"
if ! podman image exists localhost/sctp-monitor-base:bookworm; then
  rm -rf "$work/rootfs"
  debootstrap --variant=minbase bookworm "$work/rootfs" http://deb.debian.org/debian > "$work/debootstrap.log" 2>&1 \
    || { tail -20 "$work/debootstrap.log"; exit 1; }
  # The official image's sources: bookworm, updates and security.
  cat > "$work/rootfs/etc/apt/sources.list" <<'LIST'
deb http://deb.debian.org/debian bookworm main
deb http://deb.debian.org/debian bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
LIST
  tar -C "$work/rootfs" -c . | podman import --change 'CMD ["/bin/bash"]' - localhost/sctp-monitor-base:bookworm >/dev/null
  rm -rf "$work/rootfs"
fi
if ! podman image exists localhost/sctp-monitor-rust:bookworm; then
  rustup_home=${RUSTUP_HOME:-$HOME/.rustup}
  cargo_home=${CARGO_HOME:-$HOME/.cargo}
  host=x86_64-unknown-linux-gnu
  ctr=$(buildah from localhost/sctp-monitor-base:bookworm)
  trap 'buildah rm "$ctr" >/dev/null 2>&1 || true' EXIT
  buildah config --env RUSTUP_HOME=/usr/local/rustup --env CARGO_HOME=/usr/local/cargo \
    --env PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$ctr"
  for tc in "stable-$host" "$nightly-$host"; do
    buildah copy "$ctr" "$(readlink -f "$rustup_home/toolchains/$tc")" "/usr/local/rustup/toolchains/$tc" >/dev/null
  done
  printf 'version = "12"\ndefault_toolchain = "stable-%s"\nprofile = "minimal"\nauto_self_update = "disable"\n' "$host" \
    > "$work/settings.toml"
  buildah copy "$ctr" "$work/settings.toml" /usr/local/rustup/settings.toml >/dev/null
  buildah copy "$ctr" "$cargo_home/bin/rustup" /usr/local/cargo/bin/rustup >/dev/null
  buildah copy "$ctr" "$cargo_home/bin/bpf-linker" /usr/local/cargo/bin/bpf-linker >/dev/null
  buildah run --isolation chroot --network host "$ctr" -- bash -c \
    'cd /usr/local/cargo/bin && for t in cargo rustc rustdoc cargo-fmt rustfmt cargo-clippy clippy-driver; do ln -sf rustup $t; done'
  buildah commit "$ctr" localhost/sctp-monitor-rust:bookworm >/dev/null
fi
