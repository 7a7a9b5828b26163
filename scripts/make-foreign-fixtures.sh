#!/usr/bin/env bash
# Regenerates tests/fixtures/foreign/: one small tree archived by GNU tar in each of its
# formats (with -S, so sparse files are stored sparse where the format can) and by
# bsdtar, for tests/foreign.rs. Needs GNU tar, bsdtar (Debian: libarchive-tools) and
# python3. The tree's contents are what the test expects; keep the two in step.
set -euo pipefail
cd "$(dirname "$0")/.."
out=tests/fixtures/foreign
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

mkdir -p "$work/tree/dir/sub"
printf 'plain file\n' > "$work/tree/plain.txt"
printf 'nested\n' > "$work/tree/dir/sub/nested.txt"
: > "$work/tree/empty"
printf 'mode 750\n' > "$work/tree/dir/script.sh"
chmod 750 "$work/tree/dir/script.sh"
ln -s ../plain.txt "$work/tree/dir/link"
ln "$work/tree/plain.txt" "$work/tree/hardlink.txt"
long=$(printf 'n%.0s' $(seq 1 120))
printf 'long name\n' > "$work/tree/dir/$long.txt"
# 64 KiB with 4 KiB of data at 16 KiB, holes around it.
python3 - "$work/tree/sparse.bin" <<'PY'
import sys
with open(sys.argv[1], "wb") as f:
    f.seek(16384)
    f.write(bytes((i * 7) % 251 + 1 for i in range(4096)))
    f.truncate(65536)
PY
find "$work/tree" -exec touch -h -d '2024-03-01 12:00:00 UTC' {} +

cd "$work"
gnu=(tar -b1 --owner=0 --group=0 --numeric-owner --sort=name)
"${gnu[@]}" --format=gnu -S -cf gnu.tar tree
"${gnu[@]}" --format=oldgnu -S -cf oldgnu.tar tree
"${gnu[@]}" --format=posix -S -cf posix.tar tree
for v in 0.0 0.1 1.0; do
    "${gnu[@]}" --format=posix -S --sparse-version=$v -cf "posix-sparse-$v.tar" tree
done
# ustar and v7 cannot hold a 120-byte name nor a sparse file.
"${gnu[@]}" --format=ustar --exclude='nnnn*' --exclude=sparse.bin -cf ustar.tar tree
"${gnu[@]}" --format=v7 --exclude='nnnn*' --exclude=sparse.bin -cf v7.tar tree
# A tape volume label: an entry restore cannot restore.
"${gnu[@]}" --format=gnu --label='backup volume 1' -cf gnu-label.tar tree/plain.txt
bsd=(bsdtar -b1 --uid 0 --gid 0)
"${bsd[@]}" --read-sparse -cf bsdtar-pax.tar tree
"${bsd[@]}" --format=ustar --exclude='nnnn*' --exclude=sparse.bin -cf bsdtar-ustar.tar tree
cd - >/dev/null
rm -f "$out"/*.tar
cp "$work"/*.tar "$out"/
ls -l "$out"
