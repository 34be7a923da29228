#!/usr/bin/env bash
# Regenerates the BTF fixtures: the .BTF section of Debian's 6.1 and 6.12
# cloud kernels (downloaded with apt-get) and the running kernel's BTF.
#
#   btf-fixtures/extract.sh [CACHE_DIR]
#
# A bzImage keeps the compressed vmlinux at the offset that the x86 boot
# setup header stores at 0x248 (payload_offset, length at 0x24c), counted
# from the end of the real-mode setup code ((setup_sects + 1) * 512).
# 6.1 compresses it with lz4 (legacy frame), 6.12 with zstd.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${1:-${XDG_CACHE_HOME:-$HOME/.cache}/coolkprobe/kernels}
mkdir -p "$cache"
need() { command -v "$1" >/dev/null || { echo "extract.sh: needs $1 (apt-get install $2)" >&2; exit 1; }; }
need lz4 lz4; need zstd zstd; need objcopy binutils; need dpkg-deb dpkg

newest() { # newest package name matching an apt-cache regex
  apt-cache search --names-only "$1" | awk '{print $1}' | sort -V | tail -n 1
}

# u32 little-endian at byte offset $2 of file $1
u32() { od -An -t u4 -j "$2" -N 4 "$1" | tr -d ' '; }
u8() { od -An -t u1 -j "$2" -N 1 "$1" | tr -d ' '; }

extract_btf() { # bzImage out.btf
  local bz=$1 out=$2 tmp
  tmp=$(mktemp -d)
  local setup_sects payload_off payload_len start
  setup_sects=$(u8 "$bz" $((0x1f1)))
  [ "$setup_sects" -eq 0 ] && setup_sects=4
  payload_off=$(u32 "$bz" $((0x248)))
  payload_len=$(u32 "$bz" $((0x24c)))
  start=$(( (setup_sects + 1) * 512 + payload_off ))
  dd if="$bz" of="$tmp/payload" bs=1M iflag=skip_bytes,count_bytes skip="$start" count="$payload_len" status=none
  case "$(od -An -t x1 -N 4 "$tmp/payload" | tr -d ' ')" in
    02214c18) lz4 -dc <"$tmp/payload" >"$tmp/vmlinux" 2>/dev/null || true ;;  # legacy frame; trailing size word makes lz4 complain
    28b52ffd) zstd -dc <"$tmp/payload" >"$tmp/vmlinux" 2>/dev/null || true ;;
    *) echo "extract.sh: unknown compression in $bz" >&2; exit 1 ;;
  esac
  objcopy --dump-section .BTF="$out" "$tmp/vmlinux" "$tmp/scratch"
  rm -rf "$tmp"
  [ "$(od -An -t x1 -N 2 "$out" | tr -d ' ')" = "9feb" ] || { echo "extract.sh: no BTF in $bz" >&2; exit 1; }
}

for pat in '^linux-image-6\.1\.0-[0-9]+-cloud-amd64-unsigned$' '^linux-image-6\.12\.[0-9]+\+deb12-cloud-amd64-unsigned$'; do
  pkg=$(newest "$pat")
  [ -n "$pkg" ] || { echo "extract.sh: no package matches $pat (apt-get update?)" >&2; exit 1; }
  deb=$(ls "$cache/${pkg}"_*.deb 2>/dev/null | head -n 1 || true)
  if [ -z "$deb" ]; then (cd "$cache" && apt-get download "$pkg" >/dev/null); deb=$(ls "$cache/${pkg}"_*.deb | head -n 1); fi
  rel=${pkg#linux-image-}; rel=${rel%-unsigned}
  dir="$cache/$rel"
  [ -d "$dir" ] || dpkg-deb -x "$deb" "$dir"
  extract_btf "$dir/boot/vmlinuz-$rel" "$here/vmlinux-$rel.btf"
  echo "btf-fixtures/vmlinux-$rel.btf  <- $(basename "$deb")"
  # One module's split BTF (ids and strings continue vmlinux's), for the
  # module-BTF tests: 8021q is small and has structs of its own.
  if [ "${rel#6.1.0-}" != "$rel" ]; then
    mkdir -p "$here/modules-$rel"
    tmp=$(mktemp -d)
    objcopy --dump-section .BTF="$here/modules-$rel/8021q" "$dir/lib/modules/$rel/kernel/net/8021q/8021q.ko" "$tmp/scratch"
    rm -rf "$tmp"
    echo "btf-fixtures/modules-$rel/8021q  <- 8021q.ko of the same package"
  fi
done

# arm64: Debian ships an uncompressed Image (not ELF), so find the BTF blob
# by its header: magic eb9f, version 1, hdr_len 24, types then strings,
# both sections inside the file and the strings NUL-delimited.
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  echo "extract.sh: enabling arm64 packages (dpkg --add-architecture arm64)" >&2
  dpkg --add-architecture arm64 && apt-get update -q >/dev/null
fi
pkg=$(newest '^linux-image-6\.12\.[0-9]+\+deb12-cloud-arm64-unsigned$')
[ -n "$pkg" ] || { echo "extract.sh: no arm64 6.12 cloud kernel package" >&2; exit 1; }
deb=$(ls "$cache/${pkg}"_*_arm64.deb 2>/dev/null | head -n 1 || true)
if [ -z "$deb" ]; then (cd "$cache" && apt-get download "$pkg:arm64" >/dev/null); deb=$(ls "$cache/${pkg}"_*_arm64.deb | head -n 1); fi
rel=${pkg#linux-image-}; rel=${rel%-unsigned}
dir="$cache/$rel"
[ -d "$dir" ] || dpkg-deb -x "$deb" "$dir"
python3 - "$dir/boot/vmlinuz-$rel" "$here/vmlinux-$rel.btf" <<'PY'
import struct, sys
image = open(sys.argv[1], "rb").read()
at = 0
while (at := image.find(b"\x9f\xeb\x01\x00\x18\x00\x00\x00", at)) >= 0:
    type_off, type_len, str_off, str_len = struct.unpack_from("<IIII", image, at + 8)
    end = at + 24 + str_off + str_len
    if type_off == 0 and str_off == type_len and end <= len(image) \
            and image[at + 24 + str_off] == 0 and image[end - 1] == 0:
        open(sys.argv[2], "wb").write(image[at:end])
        break
    at += 1
else:
    sys.exit(f"extract.sh: no BTF blob in {sys.argv[1]}")
PY
echo "btf-fixtures/vmlinux-$rel.btf  <- $(basename "$deb")"

if [ -r /sys/kernel/btf/vmlinux ]; then
  cp /sys/kernel/btf/vmlinux "$here/vmlinux-$(uname -r).btf"
  echo "btf-fixtures/vmlinux-$(uname -r).btf  <- /sys/kernel/btf/vmlinux"
fi
