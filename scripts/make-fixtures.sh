#!/usr/bin/env bash
# Regenerates images/ (small fixture images) with qemu-img and qemu-io.
#   scripts/make-fixtures.sh
# images/demo.qcow2 is the demo disk for `npm start`; images/odd/ holds
# corrupt and unusual images, each described in images/odd/README.md
# together with what QEMU 7.2 says about it (test/image/fixtures.test.ts
# checks the library against that table).
set -euo pipefail
cd "$(dirname "$0")/.."
out=images
odd=$out/odd
rm -rf "$out"
mkdir -p "$odd"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Overwrites bytes in place: patch FILE OFFSET HEXBYTES
patch() { printf "$(echo "$3" | sed 's/../\\x&/g')" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none; }

# --- demo disk: 64 MiB, a boot sector, some text, patterns, zeros, compressed
{
  printf 'qmpemu demo disk\n'
  for i in $(seq 1 1500); do printf 'line %05d: the quick brown fox jumps over the lazy dog\n' "$i"; done
} > "$work/text"
qemu-img create -q -f raw "$work/demo.raw" 64M
dd if="$work/text" of="$work/demo.raw" bs=64k seek=1 conv=notrunc status=none
qemu-img convert -O qcow2 "$work/demo.raw" "$out/demo.qcow2"
qemu-io -f qcow2 -c "write -P 0xeb 0 510" -c "write -P 0x55 510 1" -c "write -P 0xaa 511 1" \
  -c "write -P 0x42 1M 64k" -c "write -z 2M 1M" \
  -c "write -c -P 0x61 4M 64k" -c "write -c -P 0x62 4160k 64k" "$out/demo.qcow2" > /dev/null

# --- odd and bad images: 4 MiB, 4 KiB clusters (layout: header, refcount
# table, refcount block, L1, L2, data), unless noted ------------------------
CS=4096
base() { # base NAME [extra create options]
  qemu-img create -q -f qcow2 -o "cluster_size=$CS${2:+,$2}" "$odd/$1" 4M
  qemu-io -f qcow2 -c "write -P 0x11 0 8k" -c "write -P 0x22 1M 4k" "$odd/$1" > /dev/null
}
base v3.qcow2
base v2.qcow2 compat=0.10
base refcount1.qcow2 refcount_bits=1
qemu-img create -q -f qcow2 -o cluster_size=512 "$odd/v3-512.qcow2" 1M
qemu-io -f qcow2 -c "write -P 0x11 0 3000" -c "write -z 8k 4k" "$odd/v3-512.qcow2" > /dev/null
base zero-clusters.qcow2 && qemu-io -f qcow2 -c "write -z 0 4k" -c "write -z -u 4k 4k" -c "discard 1M 4k" \
  -c "write -z 2M 8k" "$odd/zero-clusters.qcow2" > /dev/null
base bad-magic.qcow2 && patch "$odd/bad-magic.qcow2" 0 12345678
base bad-version.qcow2 && patch "$odd/bad-version.qcow2" 4 00000004
base bad-cluster-bits.qcow2 && patch "$odd/bad-cluster-bits.qcow2" 20 00000016
base unknown-incompat.qcow2 && patch "$odd/unknown-incompat.qcow2" 72 0000010000000000
base extended-l2.qcow2 && patch "$odd/extended-l2.qcow2" 72 0000000000000010
base huge-l1.qcow2 && patch "$odd/huge-l1.qcow2" 36 01000000
base l1-too-small.qcow2 && patch "$odd/l1-too-small.qcow2" 36 00000000
base corrupt-bit.qcow2 && patch "$odd/corrupt-bit.qcow2" 72 0000000000000002
base dirty-bit.qcow2 lazy_refcounts=on && patch "$odd/dirty-bit.qcow2" 72 0000000000000001
base l2-unaligned.qcow2 && patch "$odd/l2-unaligned.qcow2" $((3 * CS + 4)) 00004200
base leaked.qcow2 && truncate -s $((12 * CS)) "$odd/leaked.qcow2" && patch "$odd/leaked.qcow2" $((2 * CS + 10 * 2)) 0001
base refcount-too-low.qcow2 && patch "$odd/refcount-too-low.qcow2" $((2 * CS + 5 * 2)) 0000
base truncated.qcow2 && truncate -s $((5 * CS + 1000)) "$odd/truncated.qcow2"
base l2-past-eof.qcow2 && truncate -s $((4 * CS - 512)) "$odd/l2-past-eof.qcow2"
head -c 65536 /dev/zero | tr '\0' 'q' > "$work/q.raw"
qemu-img convert -c -O qcow2 -o cluster_size=$CS "$work/q.raw" "$odd/compressed.qcow2"
cp "$odd/compressed.qcow2" "$odd/compressed-garbage.qcow2"
patch "$odd/compressed-garbage.qcow2" $((5 * CS)) ffffffffffffffffffffffffffffffff
base snapshot.qcow2 && qemu-img snapshot -c s1 "$odd/snapshot.qcow2" \
  && qemu-io -f qcow2 -c "write -P 0x33 0 4k" "$odd/snapshot.qcow2" > /dev/null
base bitmaps.qcow2 && qemu-img bitmap --add "$odd/bitmaps.qcow2" b0
qemu-img create -q -f qcow2 -o cluster_size=$CS "$odd/backing-base.qcow2" 4M
qemu-io -f qcow2 -c "write -P 0x44 0 64k" "$odd/backing-base.qcow2" > /dev/null
qemu-img create -q -f qcow2 -o cluster_size=$CS -b backing-base.qcow2 -F qcow2 "$odd/backing-top.qcow2"
qemu-io -f qcow2 -c "write -P 0x55 1000 3000" "$odd/backing-top.qcow2" > /dev/null
qemu-img create -q -f qcow2 -o cluster_size=$CS "$odd/loop-a.qcow2" 1M
qemu-img create -q -f qcow2 -o cluster_size=$CS -b loop-a.qcow2 -F qcow2 "$odd/loop-b.qcow2"
qemu-img rebase -q -u -b loop-b.qcow2 -F qcow2 "$odd/loop-a.qcow2"

du -sh "$out"
