#!/usr/bin/env bash
# Times a backup through our archive engine against GNU tar on two generated trees:
#   small: 50,000 files of 100 B to 16 KiB (about 300 MB) in 500 folders
#   large: 4 files of 512 MiB
# Runs alternate (ours, tar, ours, tar...), RUNS of each after one untimed warm-up
# pair, with `sync` before every run so that neither pays for the other's write-back.
# Our archive is fsynced before it is renamed into place; GNU tar's is not.
# Prints the median times, their ratio, and the peak RSS of our runs; then incremental
# backups of the small tree (full, nothing changed, 1% changed); then the RSS of
# an idle backup_service; and the load average before and after, since other work on
# the machine skews the times (rerun when it was loaded). Everything is generated under a temporary folder (TMPDIR,
# /tmp by default) and removed at the end.
#
# Usage: scripts/bench.sh [RUNS]    (RUNS defaults to 5)
set -euo pipefail

runs=${1:-5}
root=$(cd "$(dirname "$0")/.." && pwd)
cargo build --release --quiet --manifest-path "$root/Cargo.toml" --bins --examples
ours="$root/target/release/examples/archive"
bin="$root/target/release"

work=$(mktemp -d "${TMPDIR:-/tmp}/backup-bench.XXXXXX")
service_home=""
cleanup() {
  if [ -n "$service_home" ]; then
    "$bin/backup_manager" --home "$service_home" stop >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

echo "Load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "Generating the trees in $work..."
python3 - "$work/small" <<'PY'
import os, random, sys
random.seed(42)
root = sys.argv[1]
total = 0
for d in range(500):
    folder = os.path.join(root, f"dir{d:03}")
    os.makedirs(folder)
    for f in range(100):
        size = int(random.triangular(100, 16384, 1500))
        total += size
        with open(os.path.join(folder, f"file{f:03}.dat"), "wb") as out:
            out.write(os.urandom(size))
print(f"  small: 50000 files, {total / 1e6:.0f} MB")
PY
mkdir -p "$work/large"
for i in 1 2 3 4; do
  head -c $((512 << 20)) /dev/urandom > "$work/large/file$i.bin"
done
echo "  large: 4 files of 512 MiB"
mkdir -p "$work/out"

# Runs one command; appends "SECONDS PEAK_RSS_KB" to the file $1.
measure() {
  local into=$1; shift
  rm -f "$work/out/"*.tar
  sync
  local start end
  start=$(date +%s%N)
  /usr/bin/time -f "%M" -o "$work/rss" "$@" >/dev/null
  end=$(date +%s%N)
  echo "$(( (end - start) / 1000000 )) $(cat "$work/rss")" >> "$into"
}

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

bench() {
  local tree=$1
  rm -f "$work/ours.txt" "$work/tar.txt"
  # Warm-up: the tree into the page cache, as on a second run of either tool.
  measure /dev/null "$ours" "$work/$tree" "$work/out/ours.tar"
  measure /dev/null tar -cf "$work/out/gnu.tar" -C "$work" "$tree"
  for _ in $(seq "$runs"); do
    measure "$work/ours.txt" "$ours" "$work/$tree" "$work/out/ours.tar"
    measure "$work/tar.txt" tar -cf "$work/out/gnu.tar" -C "$work" "$tree"
  done
  local o t rss
  o=$(cut -d' ' -f1 "$work/ours.txt" | median)
  t=$(cut -d' ' -f1 "$work/tar.txt" | median)
  rss=$(cut -d' ' -f2 "$work/ours.txt" | sort -n | tail -1)
  echo "$tree tree: ours $(tr '\n' ' ' < <(cut -d' ' -f1 "$work/ours.txt"))ms, GNU tar $(tr '\n' ' ' < <(cut -d' ' -f1 "$work/tar.txt"))ms"
  awk -v o="$o" -v t="$t" -v r="$rss" -v tree="$tree" 'BEGIN {
    printf "%s tree: median ours %.2f s, GNU tar %.2f s, ratio %.2fx; our peak RSS %.1f MiB\n",
      tree, o / 1000, t / 1000, o / t, r / 1024 }'
}

bench small
bench large

# Incremental backups of the small tree through backup_manager run: a full one (the
# record removed first), one with nothing changed, one with 1% of the files changed
# (500 files rewritten, same size). Medians of RUNS each, and the archive sizes.
inc_home="$work/inc"
mkdir -p "$inc_home"
"$bin/backup_manager" --home "$inc_home" create --incremental --keep 2 "$work/small;03:00;inc" >/dev/null
inc_run() {
  local into=$1
  sync
  local start end
  start=$(date +%s%N)
  /usr/bin/time -f "%M" -o "$work/rss" "$bin/backup_manager" --home "$inc_home" run 0 >/dev/null 2>&1
  end=$(date +%s%N)
  echo "$(( (end - start) / 1000000 )) $(stat -c %s "$inc_home/backups/inc.tar") $(cat "$work/rss")" >> "$into"
}
rm -f "$work/full.txt" "$work/same.txt" "$work/one.txt"
"$bin/backup_manager" --home "$inc_home" run 0 >/dev/null 2>&1   # warm-up
for i in $(seq "$runs"); do
  rm -f "$inc_home/backups/.inc.record"
  inc_run "$work/full.txt"
  inc_run "$work/same.txt"
  python3 - "$work/small" "$i" <<'PY'
import os, sys
root, seed = sys.argv[1], int(sys.argv[2])
for n in range(500):
    d, f = (n * 7 + seed) % 500, (n * 13 + seed) % 100
    path = os.path.join(root, f"dir{d:03}", f"file{f:03}.dat")
    with open(path, "r+b") as out:
        out.write(os.urandom(16))
PY
  inc_run "$work/one.txt"
done
for kind in full same one; do
  t=$(cut -d' ' -f1 "$work/$kind.txt" | median)
  b=$(cut -d' ' -f2 "$work/$kind.txt" | median)
  r=$(cut -d' ' -f3 "$work/$kind.txt" | sort -n | tail -1)
  echo "$kind $t $b $r"
done > "$work/inc.txt"
awk '{ t[$1] = $2; b[$1] = $3; r[$1] = $4 } END {
  printf "incremental, small tree: full %.2f s, %.1f MB, peak RSS %.1f MiB\n", t["full"] / 1000, b["full"] / 1e6, r["full"] / 1024
  printf "incremental, nothing changed: %.2f s (%.1f%% of the full), %.2f MB (%.2f%%)\n", t["same"] / 1000, 100 * t["same"] / t["full"], b["same"] / 1e6, 100 * b["same"] / b["full"]
  printf "incremental, 1%% of files changed: %.2f s (%.1f%% of the full), %.2f MB (%.2f%%)\n", t["one"] / 1000, 100 * t["one"] / t["full"], b["one"] / 1e6, 100 * b["one"] / b["full"]
}' "$work/inc.txt"

service_home="$work/home"
mkdir -p "$service_home"
"$bin/backup_manager" --home "$service_home" start
sleep 2
pid=$(cat "$service_home/.backup_service.pid")
rss=$(awk '/^VmRSS/ { print $2 }' "/proc/$pid/status")
awk -v r="$rss" 'BEGIN { printf "idle backup_service: RSS %.1f MiB\n", r / 1024 }'
"$bin/backup_manager" --home "$service_home" stop
service_home=""
echo "Load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
