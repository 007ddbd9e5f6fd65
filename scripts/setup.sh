#!/usr/bin/env bash
# Idempotent setup of a Debian 12 machine for building and testing lanbridge:
# system packages, the nightly rust-src component, the musl target (the
# image's static binary), bpf-linker linked against the nightly toolchain's
# own LLVM, and a mounted bpffs. Installs only what is
# missing; a second run is a fast no-op. Must run as root.
set -euo pipefail

APT_PACKAGES=(containernetworking-plugins dnsmasq-base iptables bpftool iperf3
	podman runc busybox-static iproute2 kea-dhcp4-server jq nftables tcpdump
	containerd musl-tools)
BPF_LINKER_VERSION=0.13.0
LLVM_PREFIX_DIR=${LANBRIDGE_LLVM_PREFIX:-/opt/lanbridge-llvm}
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

step() { echo "setup: $*"; }

if [[ $(id -u) -ne 0 ]]; then
	echo "setup: must run as root" >&2
	exit 1
fi

# --- Debian packages -------------------------------------------------------
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
	dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q '^install ok installed$' ||
		missing+=("$pkg")
done
if ((${#missing[@]})); then
	# Keep postinst scripts from starting services (kea-dhcp4-server and
	# containerd would).
	policy=/usr/sbin/policy-rc.d
	if [[ ! -e $policy ]]; then
		printf '#!/bin/sh\nexit 101\n' >"$policy"
		chmod 755 "$policy"
		trap 'rm -f "$policy"' EXIT
	fi
	step "apt-get update"
	apt-get update -qq
	step "apt-get install ${missing[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		"${missing[@]}" >/dev/null
	# Tests start their own servers and their own private containerd.
	for service in kea-dhcp4-server containerd; do
		[[ " ${missing[*]} " == *" $service "* ]] || continue
		step "disable the $service service"
		if [[ -d /run/systemd/system ]]; then
			systemctl disable --now "$service" >/dev/null 2>&1 || true
		else
			systemctl disable "$service" >/dev/null 2>&1 || true
		fi
	done
else
	step "debian packages: all present"
fi

# --- nightly rust-src --------------------------------------------------------
if ! rustup toolchain list | grep -q '^nightly'; then
	step "rustup toolchain install nightly"
	rustup toolchain install nightly --profile minimal -c rust-src
elif ! rustup component list --toolchain nightly --installed | grep -q '^rust-src'; then
	step "rustup component add rust-src --toolchain nightly"
	rustup component add rust-src --toolchain nightly
else
	step "nightly rust-src: present"
fi

# --- the musl target (`cargo xtask image`: a static binary) ------------------
if rustup target list --installed | grep -qx x86_64-unknown-linux-musl; then
	step "rust target x86_64-unknown-linux-musl: present"
else
	step "rustup target add x86_64-unknown-linux-musl"
	rustup target add x86_64-unknown-linux-musl
fi

# --- bpf-linker against nightly's libLLVM ------------------------------------
if bpf-linker --version 2>/dev/null | grep -q " $BPF_LINKER_VERSION\$"; then
	step "bpf-linker $BPF_LINKER_VERSION: present"
else
	sysroot=$(rustc +nightly --print sysroot)
	llvm_lib=$(find "$sysroot/lib" -maxdepth 1 -name 'libLLVM.so.*-rust-*' | head -n1)
	if [[ -z $llvm_lib ]]; then
		echo "setup: no libLLVM.so.*-rust-* in $sysroot/lib" >&2
		exit 1
	fi
	step "copy $(basename "$llvm_lib") to $LLVM_PREFIX_DIR/lib"
	mkdir -p "$LLVM_PREFIX_DIR/lib"
	cp -f "$llvm_lib" "$LLVM_PREFIX_DIR/lib/"
	ln -sfn "$(basename "$llvm_lib")" "$LLVM_PREFIX_DIR/lib/libLLVM.so"
	llvm_major=$(basename "$llvm_lib" | sed -E 's/^libLLVM\.so\.([0-9]+).*/\1/')
	step "cargo install bpf-linker@$BPF_LINKER_VERSION (llvm-$llvm_major, takes a few minutes)"
	# The build records $LLVM_PREFIX_DIR/lib as bpf-linker's runpath.
	LLVM_PREFIX=$LLVM_PREFIX_DIR cargo install --quiet --locked --force \
		"bpf-linker@$BPF_LINKER_VERSION" --no-default-features --features "llvm-$llvm_major"
	bpf-linker --version
fi

# --- bpffs -------------------------------------------------------------------
if grep -qs '^[^ ]* /sys/fs/bpf bpf ' /proc/mounts; then
	step "bpffs: mounted at /sys/fs/bpf"
else
	step "mount -t bpf bpf /sys/fs/bpf"
	mount -t bpf bpf /sys/fs/bpf
fi

step "done"
