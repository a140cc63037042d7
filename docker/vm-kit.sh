#!/usr/bin/env bash
# The optional kit chapter 1 uses to boot a real virtual machine beside a container: QEMU, a static
# busybox for the VM's tiny initramfs, and a Linux kernel unpacked into .cache/vm/ (never installed).
#
# As root on Debian/Ubuntu: installs qemu-system-x86, busybox-static and cpio with apt, then downloads
# the cloud kernel package and unpacks only its vmlinuz with `dpkg -x`. Without root (or without apt),
# nothing on the machine is changed: the steps are printed instead, and the chapter skips its VM boot.
# Idempotent: when everything is present it returns at once, without touching apt.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cache=${VM_CACHE:-$(cd "$here/.." && pwd)/.cache/vm}
kernel_pkg=${VM_KERNEL_PKG:-linux-image-cloud-amd64}
packages=(qemu-system-x86 busybox-static cpio)

say() { printf '[vm-kit] %s\n' "$*"; }

have_tools() { command -v qemu-system-x86_64 >/dev/null 2>&1 && command -v busybox >/dev/null 2>&1; }
have_kernel() { compgen -G "$cache/vmlinuz-*" >/dev/null; }

print_manual_steps() {
  say "The VM kit is optional: without it chapter 1 says so and skips its VM boot."
  say "To add it on Debian/Ubuntu, as root (or with sudo), from the repository root:"
  say "  apt-get install -y --no-install-recommends ${packages[*]}"
  say "  mkdir -p $cache/deb && cd $cache/deb"
  say "  apt-get download \$(apt-cache depends $kernel_pkg | awk '/Depends: linux-image-/ {print \$2; exit}')"
  say "  dpkg -x linux-image-*.deb unpacked && cp unpacked/boot/vmlinuz-* $cache/ && cd - && rm -rf $cache/deb"
  say "Then run this script again to check."
}

install_tools() {
  say "Installing ${packages[*]} with apt..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
}

fetch_kernel() (
  # A subshell, so the EXIT trap below removes the download folder however this function ends.
  # The meta package (linux-image-cloud-amd64) holds no kernel: download the versioned one it depends on.
  versioned=$(apt-cache depends "$kernel_pkg" 2>/dev/null | awk '/Depends: linux-image-/ {print $2; exit}')
  if [ -z "$versioned" ]; then
    say "apt knows no kernel behind $kernel_pkg (run 'apt-get update' first?)"
    return 1
  fi
  say "Downloading $versioned and unpacking its kernel into $cache/ (dpkg -x, nothing is installed)..."
  mkdir -p "$cache"
  work=$(mktemp -d "$cache/.deb.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  # apt drops privileges to the _apt user for downloads; let it write into the work folder.
  chmod 0777 "$work"
  (cd "$work" && apt-get download -qq "$versioned" 2>&1 | grep -v "unsandboxed" >&2 || true)
  deb=$(compgen -G "$work/linux-image-*.deb" | head -n 1 || true)
  if [ -z "$deb" ]; then
    say "apt-get download $versioned produced no .deb"
    return 1
  fi
  dpkg -x "$deb" "$work/unpacked"
  cp "$work"/unpacked/boot/vmlinuz-* "$cache/"
  chmod 0644 "$cache"/vmlinuz-*
)

if have_tools && have_kernel; then
  say "ready: $(qemu-system-x86_64 --version | head -n 1); kernel $(basename "$(compgen -G "$cache/vmlinuz-*" | sort -V | tail -n 1)")"
  exit 0
fi

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  print_manual_steps
  exit 0
fi

have_tools || install_tools
have_kernel || fetch_kernel
say "ready: $(qemu-system-x86_64 --version | head -n 1); kernel $(basename "$(compgen -G "$cache/vmlinuz-*" | sort -V | tail -n 1)")"
if [ -e /dev/kvm ]; then
  say "/dev/kvm exists: the chapter tries KVM first, with a short timeout, and falls back to software emulation (TCG)."
else
  say "no /dev/kvm: the chapter boots the VM with software emulation (TCG), which is slower but works anywhere."
fi
