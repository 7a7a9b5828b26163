# The browse section of scripts/bench.sh, sourced by it (it sets work, bin, ours, runs,
# median, settle, versus, full_backup):
# getting files back from the indexes, measured beside GNU tar.

files=${BROWSE_FILES:-50000}
entries=${BROWSE_ENTRIES:-1000000}
generations=${BROWSE_GENERATIONS:-30}
manager="$bin/backup_manager"

# Milliseconds of one run of the command, to a tenth, its output thrown away: taken
# from the shell's own clock, as a `date` run inside the timed span would add its start.
millis() {
  local start=$EPOCHREALTIME
  "$@" >/dev/null 2>&1
  local end=$EPOCHREALTIME
  awk -v s="$start" -v e="$end" 'BEGIN { printf "%.1f\n", (e - s) * 1000 }'
}

# The median milliseconds of RUNS (at least 5) runs of the command, after one untimed.
timed() {
  local n=$(( runs > 5 ? runs : 5 ))
  "$@" >/dev/null 2>&1
  for _ in $(seq "$n"); do millis "$@"; done | median
}


# A tree of $files files in folders of 100, as the small tree of the archive section.
python3 - "$work/browse/tree" "$files" <<'PY'
import os, random, sys
random.seed(7)
root, count = sys.argv[1], int(sys.argv[2])
for i in range(count):
    folder = os.path.join(root, f"dir{i // 100:04}")
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, f"file{i % 100:03}.dat"), "wb") as out:
        out.write(os.urandom(int(random.triangular(100, 16384, 1500))))
PY
home="$work/browse"
"$manager" --home "$home" create "$home/tree;03:00;plain" >/dev/null
"$manager" --home "$home" create --compress zstd "$home/tree;03:00;packed" >/dev/null
for i in 0 1; do
  sync
  settle
  ms=$(millis "$manager" --home "$home" run "$i")
  name=$( [ "$i" = 0 ] && echo plain.tar || echo packed.tar.zst )
  bytes=$(stat -c %s "$home/backups/$name")
  idx=$(stat -c %s "$home/backups/.$name.idx")
  awk -v ms="$ms" -v b="$bytes" -v i="$idx" -v n="$name" 'BEGIN {
    printf "browse: full backup %s: %.2f s, %.0f MB; index %.0f KB, %.2f%% of the archive\n",
      n, ms / 1000, b / 1e6, i / 1e3, 100 * i / b }'
  echo "$ms" > "$work/browse-full-$i.txt"
  full_backup "full backup $name through backup_manager run" "$bytes" "$work/browse-full-$i.txt"
done
# The index's time: made again from the (cached) plain archive, an upper bound of what
# its thread adds to a backup, which it runs beside.
full=$(millis "$manager" --home "$home" run 0)
rebuild=$(timed sh -c "rm \"$home/backups/.plain.tar.idx\" && \"$manager\" --home \"$home\" verify plain --rebuild-index")
verify=$(timed "$manager" --home "$home" verify plain)
awk -v f="$full" -v r="$rebuild" -v v="$verify" 'BEGIN {
  printf "browse: verify with its index check %.2f s; verify --rebuild-index %.2f s; a full backup %.2f s\n",
    v / 1000, r / 1000, f / 1000 }'
# What the index costs a full backup: the engine with its index against without, plain.
indexed=("$ours" "$home/tree" "$work/out/ours.tar")
unindexed=("$ours" "$home/tree" "$work/out/ours.tar" no-index)
versus "browse: full backup with its index against without" indexed unindexed
one=$(zstd -3 -T0 -q -c "$home/backups/plain.tar" | wc -c)
seekable=$(stat -c %s "$home/backups/packed.tar.zst")
awk -v o="$one" -v s="$seekable" 'BEGIN {
  printf "browse: seekable zstd %.1f MB against one frame (zstd -3 -T0) %.1f MB: %+.2f%%\n",
    s / 1e6, o / 1e6, 100 * (s - o) / o }'

last=$(tar -tf "$home/backups/plain.tar" | tail -1)
for pair in "plain:plain.tar:" "packed:packed.tar.zst:--zstd"; do
  IFS=: read -r name file flag <<< "$pair"
  ours=$(timed "$manager" --home "$home" cat "$name" "$last")
  gnu=$(timed tar $flag -xOf "$home/backups/$file" "$last")
  awk -v o="$ours" -v g="$gnu" -v f="$file" 'BEGIN {
    printf "browse: cat of the last file of %s: %.1f ms; GNU tar -xO of it: %.1f ms (%.3fx)\n",
      f, o, g, (g > 0 ? o / g : 0) }'
done

# Through the mount (where FUSE is there): the first byte of the archive's last file,
# timed from before its `open`, at the first look at the generation (a fresh mount each
# run: its index read and its tree built on that open), then `find | wc -l` of it.
if [ -e /dev/fuse ] && command -v fusermount3 >/dev/null; then
  mnt="$work/browse-mnt"
  mkdir -p "$mnt"
  for name in plain packed; do
    looks=()
    for _ in $(seq $(( runs > 5 ? runs : 5 ))); do
      "$manager" --home "$home" mount --daemon "$mnt" "$name" >/dev/null 2>&1
      generation=$(ls "$mnt/$name" | grep -v '^latest$' | head -1)
      looks+=("$(millis head -c 1 "$mnt/$name/$generation/$last")")
      fusermount3 -u "$mnt"
    done
    # Once more, and with the generation's tree built by that first look, all of it.
    "$manager" --home "$home" mount --daemon "$mnt" "$name" >/dev/null 2>&1
    head -c 1 "$mnt/$name/$generation/$last" >/dev/null
    start=$EPOCHREALTIME
    listed=$(find "$mnt/$name/$generation" | wc -l)
    end=$EPOCHREALTIME
    fusermount3 -u "$mnt"
    look=$(printf '%s\n' "${looks[@]}" | median)
    awk -v t="$look" -v all="${looks[*]}" -v n="$name" -v s="$start" -v e="$end" -v l="$listed" 'BEGIN {
      printf "browse: mount %s, first byte of the last file at a first look: %s ms; median %.1f ms; find | wc -l (%d lines, tree built) %.1f ms\n",
        n, all, t, l, (e - s) * 1000 }'
  done
else
  echo "browse: mount: skipped, no /dev/fuse or fusermount3 (Debian's fuse3)"
fi

# A chain of a full and $generations - 1 incrementals, 1% of the files changed each time.
"$manager" --home "$home" create --incremental --keep "$generations" "$home/tree;03:00;chain" >/dev/null
for g in $(seq "$generations"); do
  for f in $(seq 0 100 $(( files - 1 )) | head -n $(( files / 100 ))); do
    printf '%s' "$g" >> "$home/tree/dir$(printf %04d $(( f / 100 )))/file$(printf %03d $(( (f + g) % 100 ))).dat"
  done
  "$manager" --home "$home" run 2 2>/dev/null
done
found=$(timed "$manager" --home "$home" find 'file042.dat' chain)
versions=$("$manager" --home "$home" find 'file042.dat' chain | wc -l)
echo "browse: find across $generations generations of a chain: $found ms ($versions versions)"

# An archive of $entries entries: empty files in folders of 1,000.
python3 - "$work/browse/many" "$entries" <<'PY'
import os, sys
root, count = sys.argv[1], int(sys.argv[2])
for i in range(count):
    folder = os.path.join(root, f"d{i // 1000:04}")
    if i % 1000 == 0:
        os.makedirs(folder)
    open(os.path.join(folder, f"f{i % 1000:03}"), "wb").close()
PY
"$manager" --home "$home" create "$home/many;03:00;many" >/dev/null
"$manager" --home "$home" run 3 2>/dev/null
first=$(timed sh -c "\"$manager\" --home \"$home\" files many | head -1")
/usr/bin/time -f "%M" -o "$work/rss" "$manager" --home "$home" files many >/dev/null
listed=$("$manager" --home "$home" files many | wc -l)
awk -v f="$first" -v r="$(cat "$work/rss")" -v n="$listed" 'BEGIN {
  printf "browse: listing %d entries: first line after %.1f ms; whole listing peak RSS %.1f MiB\n",
    n, f, r / 1024 }'
rm -rf "$work/browse"
