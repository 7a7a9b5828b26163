#!/usr/bin/env bash
# Times a backup through our archive engine against GNU tar on two generated trees:
#   small: 50,000 files of 100 B to 16 KiB (about 300 MB) in 500 folders
#   large: 4 files of 512 MiB
# then what excludes cost, ours against ours:
#   small with three excludes and exclude-caches (nothing matches) against none;
#   small with a .git, a .gitignore in every tenth folder and gitignore against none;
#   exclude-caches on a tree whose target/ (tagged) holds 100,000 files, against the
#   same tree whose target/ holds only its tag.
# Runs alternate (ours, tar, tar then sync of its archive, and `dd oflag=direct` of as
# many MiB as our archive, the disk's floor; each goes first in turn), RUNS of each after
# one untimed warm-up, with `sync` before every run so that none pays for another's
# write-back. Our archive is fsynced before it is renamed into place; GNU tar's is not,
# so GNU tar is timed both ways.
# Prints every run's time, the medians, their ratios, and the peak RSS of our runs; then
# incremental backups of the small tree (full, nothing changed, 1% changed), beside
# GNU tar's own --listed-incremental and a bare `stat` of every file; then the peak RSS
# of a full and an incremental backup of a generated tree of 1,000,000 files; then the
# RSS of an idle backup_service, alone and with 10,000 schedules, and the time `list`
# takes to show 10,000 schedules; then an encrypted zstd backup of each tree (to one age
# key) against the same backup unencrypted; then getting files back (the browse
# section): `cat` of an archive's last file against GNU tar extracting it, plain and zstd,
# the first byte of that file through `mount` at a first look at its generation,
# `find` across a chain of 30 generations, listing a 1,000,000-entry archive (first line,
# peak RSS), the index's size and time against the archive's, and seekable zstd's size
# against one frame; and the load average before and after, since other work on the
# machine skews the times (rerun when it was loaded). Everything is generated under a
# temporary folder (TMPDIR, /tmp by default) and removed at the end.
#
# Every section starts and ends by measuring the disk's direct write speed (`dd
# oflag=direct` of DD_MIB MiB, 1024 by default), and reports each full backup also as the
# share of that speed it reached (1.00: the archive written as fast as `dd` writes past the
# page cache), so that figures from days with different disk speeds compare. Before each
# timed run and each `dd`, the script waits for the disk to go idle: a big file removed on
# a file system mounted with online discard keeps the disk busy after `rm` returns.
#
# Usage: scripts/bench.sh [RUNS] [SECTION...]
#   RUNS defaults to 5; SECTIONs (all by default): archive excludes incremental million
#   service encryption browse restore (see scripts/bench-restore.sh). For a quick check
#   of the browse section on a small scale:
#   BROWSE_FILES=2000 BROWSE_ENTRIES=20000 BROWSE_GENERATIONS=5 DD_MIB=16 \
#     scripts/bench.sh 1 browse
set -euo pipefail

runs=${1:-5}
shift || true
sections=${*:-archive excludes incremental million service encryption browse restore}
want() { [[ " $sections " == *" $1 "* ]]; }
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
# The small tree at $1, of $2 files (50,000 by default) of 100 B to 16 KiB of random
# data, 100 a folder: the same files whichever section makes it.
small_tree() {
  python3 - "$1" "${2:-50000}" <<'PY'
import os, random, sys
random.seed(42)
root, count = sys.argv[1], int(sys.argv[2])
total = 0
for i in range(count):
    folder = os.path.join(root, f"dir{i // 100:03}")
    os.makedirs(folder, exist_ok=True)
    size = int(random.triangular(100, 16384, 1500))
    total += size
    with open(os.path.join(folder, f"file{i % 100:03}.dat"), "wb") as out:
        out.write(os.urandom(size))
print(f"  small: {count} files, {total / 1e6:.0f} MB")
PY
}

if want archive || want excludes || want incremental || want encryption; then
  small_tree "$work/small"
fi
if want archive || want encryption; then
  mkdir -p "$work/large"
  for i in 1 2 3 4; do
    head -c $((512 << 20)) /dev/urandom > "$work/large/file$i.bin"
  done
  echo "  large: 4 files of 512 MiB"
fi
if want excludes; then
  python3 - "$work/cached" "$work/bare" <<'PY'
import os, sys
tag = b"Signature: 8a477f597d28d172789f06886806bc55\n"
for root in sys.argv[1:]:
    os.makedirs(os.path.join(root, "src"))
    for f in range(100):
        with open(os.path.join(root, "src", f"file{f:03}.rs"), "wb") as out:
            out.write(b"fn main() {}\n" * 100)
    os.makedirs(os.path.join(root, "target"))
    with open(os.path.join(root, "target", "CACHEDIR.TAG"), "wb") as out:
        out.write(tag)
for d in range(100):
    folder = os.path.join(sys.argv[1], "target", "debug", f"dir{d:02}")
    os.makedirs(folder)
    for f in range(1000):
        open(os.path.join(folder, f"file{f:03}.o"), "wb").close()
print("  cached: 100 files and a tagged target/ of 100,000; bare: its target/ holds the tag only")
PY
fi
mkdir -p "$work/out"

# The block device under the work folder, whose busy time settle() watches.
device=$(basename "$(df --output=source "$work" | tail -1)")
device_stat="/sys/class/block/$device/stat"

# Waits until the disk has been idle (busy less than a tenth of the time) for a second,
# at most a minute.
settle() {
  [ -r "$device_stat" ] || return 0
  local quiet=0 tries=0 last now
  last=$(awk '{ print $10 }' "$device_stat")
  while [ "$quiet" -lt 5 ] && [ "$tries" -lt 300 ]; do
    sleep 0.2
    now=$(awk '{ print $10 }' "$device_stat")
    if [ $(( now - last )) -lt 20 ]; then quiet=$(( quiet + 1 )); else quiet=0; fi
    last=$now
    tries=$(( tries + 1 ))
  done
}

# The disk's direct write speed in MB/s: DD_MIB MiB written past the page cache.
disk_speed() {
  local mib=${DD_MIB:-1024} start end
  sync
  settle
  start=$(date +%s%N)
  dd if=/dev/zero of="$work/dd.bin" bs=1M count="$mib" oflag=direct status=none
  end=$(date +%s%N)
  rm -f "$work/dd.bin"
  sync
  settle
  awk -v b=$((mib << 20)) -v ns=$((end - start)) 'BEGIN { printf "%.0f", b / 1e6 / (ns / 1e9) }'
}

# Starts the section $1: its floor, and an empty list of its full backups.
section_start() {
  section=$1
  floor_start=$(disk_speed)
  echo "$section: disk direct write speed at the start: $floor_start MB/s"
  : > "$work/fulls.txt"
}

# Notes a full backup of the section, for section_end: its label $1, the bytes written $2,
# and the file $3 whose first column holds every run's milliseconds.
full_backup() {
  local n
  n=$(wc -l < "$work/fulls.txt")
  cp "$3" "$work/full.$n.txt"
  echo "$work/full.$n.txt $2 $1" >> "$work/fulls.txt"
}

# Ends the section: the floor again, and each full backup, run by run and its median, as
# the share of the disk's direct speed it reached, against either floor.
section_end() {
  local floor_end runs_file bytes label
  floor_end=$(disk_speed)
  echo "$section: disk direct write speed at the end: $floor_end MB/s"
  while read -r runs_file bytes label; do
    cut -d' ' -f1 "$runs_file" | awk -v s="$floor_start" -v e="$floor_end" -v b="$bytes" \
      -v m="$(cut -d' ' -f1 "$runs_file" | median)" -v what="$section: $label" '
      { line = line sprintf(" %.2f", b / 1e6 / (s < e ? s : e) / ($1 / 1000)) }
      END {
        low = s < e ? s : e; high = s < e ? e : s
        printf "%s: %.0f MB; median %.2f s, %.2f of the slower floor (%d MB/s), %.2f of the faster (%d MB/s); each run against the slower:%s\n",
          what, b / 1e6, m / 1000, b / 1e6 / low / (m / 1000), low, b / 1e6 / high / (m / 1000), high, line }'
  done < "$work/fulls.txt"
}

# Runs one command; appends "MILLISECONDS PEAK_RSS_KB BYTES CPU_MILLISECONDS" to the file
# $1: BYTES what it left in the output folder, CPU_MILLISECONDS the CPU time (user and
# system) of the command and its children, which on a shared machine moves less with the
# load than the elapsed time does.
measure() {
  local into=$1; shift
  rm -f "$work/out/"*.tar
  sync
  settle
  local start end
  start=$(date +%s%N)
  /usr/bin/time -f "%M %U %S" -o "$work/rss" "$@" >/dev/null
  end=$(date +%s%N)
  local rss cpu
  read -r rss cpu < <(awk '{ printf "%d %d\n", $1, ($2 + $3) * 1000 }' "$work/rss")
  echo "$(( (end - start) / 1000000 )) $rss $(find "$work/out" -maxdepth 1 -name '*.tar' -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }') $cpu" >> "$into"
}

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# Every run's milliseconds, in the order run, from the first column of the file $1.
spread() { tr '\n' ' ' < <(cut -d' ' -f1 "$1"); }

# GNU tar, then its archive flushed to the disk, as ours is before it is in place.
tar_synced() { tar -cf "$1" -C "$2" "$3" && sync "$1"; }
export -f tar_synced

bench() {
  local tree=$1 round i mib
  local tools=(ours tar synced dd)
  rm -f "$work/ours.txt" "$work/tar.txt" "$work/synced.txt" "$work/dd.txt"
  # Warm-up: the tree into the page cache, as on a second run of either tool.
  measure /dev/null "$ours" "$work/$tree" "$work/out/ours.tar"
  # The disk's floor in every round too, as many MiB as our archive: its speed drifts
  # from one minute to the next, which a measure at the start and the end alone misses.
  mib=$(( ($(stat -c %s "$work/out/ours.tar") + (1 << 20) - 1) >> 20 ))
  measure /dev/null tar -cf "$work/out/gnu.tar" -C "$work" "$tree"
  for round in $(seq "$runs"); do
    # Each tool goes first in turn, so that none always runs after the same one.
    for i in 0 1 2 3; do
      case ${tools[$(( (round + i) % 4 ))]} in
        ours) measure "$work/ours.txt" "$ours" "$work/$tree" "$work/out/ours.tar" ;;
        tar) measure "$work/tar.txt" tar -cf "$work/out/gnu.tar" -C "$work" "$tree" ;;
        synced) measure "$work/synced.txt" bash -c 'tar_synced "$@"' _ "$work/out/gnu.tar" "$work" "$tree" ;;
        dd) measure "$work/dd.txt" dd if=/dev/zero of="$work/out/dd.tar" bs=1M count="$mib" oflag=direct status=none ;;
      esac
    done
  done
  local o t y d rss
  o=$(cut -d' ' -f1 "$work/ours.txt" | median)
  t=$(cut -d' ' -f1 "$work/tar.txt" | median)
  y=$(cut -d' ' -f1 "$work/synced.txt" | median)
  d=$(cut -d' ' -f1 "$work/dd.txt" | median)
  rss=$(cut -d' ' -f2 "$work/ours.txt" | sort -n | tail -1)
  echo "$tree tree: ours $(spread "$work/ours.txt")ms; GNU tar $(spread "$work/tar.txt")ms; GNU tar synced $(spread "$work/synced.txt")ms; dd of as many MiB $(spread "$work/dd.txt")ms"
  awk -v o="$o" -v t="$t" -v y="$y" -v d="$d" -v r="$rss" -v tree="$tree" 'BEGIN {
    printf "%s tree: median ours %.2f s, GNU tar %.2f s (%.2fx), GNU tar synced %.2f s (%.2fx), dd %.2f s (ours at %.2f of its speed); our peak RSS %.1f MiB\n",
      tree, o / 1000, t / 1000, o / t, y / 1000, o / y, d / 1000, d / o, r / 1024 }'
  full_backup "$tree tree, ours" "$(tail -1 "$work/ours.txt" | cut -d' ' -f3)" "$work/ours.txt"
  full_backup "$tree tree, GNU tar then sync" "$(tail -1 "$work/synced.txt" | cut -d' ' -f3)" "$work/synced.txt"
}

# Times the command in the array named $2 against the one named $3, interleaved, as
# bench does; prints their median times and ratio, labelled $1. The runs' files stay as
# $work/a.txt and $work/b.txt.
versus() {
  local label=$1
  local -n first=$2 second=$3
  rm -f "$work/a.txt" "$work/b.txt"
  measure /dev/null "${first[@]}"
  measure /dev/null "${second[@]}"
  local round
  for round in $(seq "$runs"); do
    # Each goes first in turn.
    if (( round % 2 )); then
      measure "$work/a.txt" "${first[@]}"
      measure "$work/b.txt" "${second[@]}"
    else
      measure "$work/b.txt" "${second[@]}"
      measure "$work/a.txt" "${first[@]}"
    fi
  done
  local a b
  a=$(cut -d' ' -f1 "$work/a.txt" | median)
  b=$(cut -d' ' -f1 "$work/b.txt" | median)
  echo "$label: $(spread "$work/a.txt")ms against $(spread "$work/b.txt")ms"
  awk -v a="$a" -v b="$b" -v label="$label" 'BEGIN {
    printf "%s: median %.3f s against %.3f s, ratio %.2fx\n", label, a / 1000, b / 1000, a / b }'
  a=$(cut -d' ' -f4 "$work/a.txt" | median)
  b=$(cut -d' ' -f4 "$work/b.txt" | median)
  awk -v a="$a" -v b="$b" -v label="$label" 'BEGIN {
    printf "%s: median CPU (user and system) %.3f s against %.3f s, ratio %.2fx\n", label, a / 1000, b / 1000, a / b }'
}

if want archive; then
  section_start archive
  bench small
  bench large
  section_end
fi

if want excludes; then
  section_start excludes
  plain=("$ours" "$work/small" "$work/out/ours.tar")
  excluding=("$ours" "$work/small" "$work/out/ours.tar"
    "exclude=*.log" "exclude=node_modules/" "exclude=/build/" exclude-caches)
  versus "small tree, three excludes and exclude-caches against none" excluding plain
  full_backup "small tree, no exclude" "$(tail -1 "$work/b.txt" | cut -d' ' -f3)" "$work/b.txt"

  # A repository: a .git at the top, a .gitignore in every tenth folder, matching nothing.
  mkdir -p "$work/repo"
  cp -a "$work/small/." "$work/repo"
  mkdir -p "$work/repo/.git/info"
  echo "ref: refs/heads/main" > "$work/repo/.git/HEAD"
  for d in $(seq 0 10 499); do
    printf '*.log\n/build/\ntarget/\n!keep.log\n' > "$work/repo/$(printf 'dir%03d' "$d")/.gitignore"
  done
  repo_plain=("$ours" "$work/repo" "$work/out/ours.tar")
  gitignored=("$ours" "$work/repo" "$work/out/ours.tar" gitignore)
  versus "small tree with .gitignore files, gitignore against none" gitignored repo_plain
  rm -rf "$work/repo"

  cached=("$ours" "$work/cached" "$work/out/ours.tar" exclude-caches)
  bare=("$ours" "$work/bare" "$work/out/ours.tar" exclude-caches)
  versus "exclude-caches, target/ of 100,000 files against target/ of its tag alone" cached bare
  section_end
fi

# Runs `backup_manager run 0` in the home $2; appends "MILLISECONDS ARCHIVE_BYTES
# PEAK_RSS_KB" to the file $1, the archive being backups/$3.tar.
backup_run() {
  local into=$1 home=$2 name=$3
  sync
  settle
  local start end
  start=$(date +%s%N)
  /usr/bin/time -f "%M" -o "$work/rss" "$bin/backup_manager" --home "$home" run 0 >/dev/null 2>&1
  end=$(date +%s%N)
  echo "$(( (end - start) / 1000000 )) $(stat -c %s "$home/backups/$name.tar") $(cat "$work/rss")" >> "$into"
}

if want incremental; then
  # Incremental backups of the small tree through backup_manager run: a full one (the
  # record removed first), one with nothing changed, one with 1% of the files changed
  # (500 files rewritten, same size). keep is high enough that no run pays for pruning
  # an older chain (the removal of a 339 MB full). Medians of RUNS each, every run's
  # time, and the archive sizes.
  section_start incremental
  inc_home="$work/inc"
  mkdir -p "$inc_home"
  "$bin/backup_manager" --home "$inc_home" create --incremental --keep 100 "$work/small;03:00;inc" >/dev/null
  rm -f "$work/full.txt" "$work/same.txt" "$work/one.txt"
  "$bin/backup_manager" --home "$inc_home" run 0 >/dev/null 2>&1   # warm-up
  for i in $(seq "$runs"); do
    rm -f "$inc_home/backups/.inc.record"
    backup_run "$work/full.txt" "$inc_home" inc
    backup_run "$work/same.txt" "$inc_home" inc
    python3 - "$work/small" "$i" <<'PY'
import os, sys
root, seed = sys.argv[1], int(sys.argv[2])
for n in range(500):
    d, f = (n * 7 + seed) % 500, (n * 13 + seed) % 100
    path = os.path.join(root, f"dir{d:03}", f"file{f:03}.dat")
    with open(path, "r+b") as out:
        out.write(os.urandom(16))
PY
    backup_run "$work/one.txt" "$inc_home" inc
  done
  for kind in full same one; do
    echo "incremental runs, $kind: $(spread "$work/$kind.txt")ms"
  done
  for kind in full same one; do
    t=$(cut -d' ' -f1 "$work/$kind.txt" | median)
    b=$(cut -d' ' -f2 "$work/$kind.txt" | median)
    r=$(cut -d' ' -f3 "$work/$kind.txt" | sort -n | tail -1)
    echo "$kind $t $b $r"
  done > "$work/inc.txt"
  awk '{ t[$1] = $2; b[$1] = $3; r[$1] = $4 } END {
    printf "incremental, small tree: full %.2f s, %.1f MB, peak RSS %.1f MiB\n", t["full"] / 1000, b["full"] / 1e6, r["full"] / 1024
    printf "incremental, nothing changed: %.3f s (%.1f%% of the full), %.2f MB (%.2f%%)\n", t["same"] / 1000, 100 * t["same"] / t["full"], b["same"] / 1e6, 100 * b["same"] / b["full"]
    printf "incremental, 1%% of files changed: %.3f s (%.1f%% of the full), %.2f MB (%.2f%%)\n", t["one"] / 1000, 100 * t["one"] / t["full"], b["one"] / 1e6, 100 * b["one"] / b["full"]
  }' "$work/inc.txt"
  full_backup "small tree, an incremental schedule's full" "$(cut -d' ' -f2 "$work/full.txt" | median)" "$work/full.txt"
  rm -rf "$inc_home"

  # For scale: GNU tar's own incremental of the same tree with nothing changed (its
  # snapshot file copied back each time), and `find` doing nothing but stat every file.
  rm -f "$work/gnu-full.txt" "$work/gnu-same.txt" "$work/find.txt"
  tar -c --listed-incremental="$work/snar" -f "$work/out/gnu.tar" -C "$work" small
  for _ in $(seq "$runs"); do
    cp "$work/snar" "$work/snar.1"
    measure "$work/gnu-same.txt" tar -c --listed-incremental="$work/snar.1" -f "$work/out/gnu-inc.tar" -C "$work" small
    measure "$work/gnu-full.txt" tar -cf "$work/out/gnu.tar" -C "$work" small
    measure "$work/find.txt" find "$work/small" -printf '%i %s %T@ %C@\n'
  done
  echo "GNU tar, small tree: full $(spread "$work/gnu-full.txt")ms; --listed-incremental, nothing changed $(spread "$work/gnu-same.txt")ms; find, stat only $(spread "$work/find.txt")ms"
  awk -v f="$(median < <(cut -d' ' -f1 "$work/gnu-full.txt"))" \
      -v s="$(median < <(cut -d' ' -f1 "$work/gnu-same.txt"))" \
      -v n="$(median < <(cut -d' ' -f1 "$work/find.txt"))" 'BEGIN {
    printf "GNU tar: nothing changed %.3f s, %.1f%% of its full (%.2f s); a bare stat of every file: %.3f s\n", s / 1000, 100 * s / f, f / 1000, n / 1000 }'
  section_end
fi

if want million; then
  # Memory with a large record: 1,000,000 one-byte files in 1,000 folders, a full
  # backup and then an incremental with nothing changed; their peak RSS.
  python3 - "$work/million" <<'PY'
import os, sys
root = sys.argv[1]
for d in range(1000):
    folder = os.path.join(root, f"d{d:03}")
    os.makedirs(folder)
    for f in range(1000):
        with open(os.path.join(folder, f"f{f:03}"), "wb") as out:
            out.write(b"x")
print("  million: 1,000,000 files of 1 byte in 1,000 folders")
PY
  section_start million
  big_inc="$work/million-home"
  mkdir -p "$big_inc"
  "$bin/backup_manager" --home "$big_inc" create --incremental --keep 2 "$work/million;03:00;m" >/dev/null
  rm -f "$work/million.txt"
  backup_run "$work/million.txt" "$big_inc" m
  backup_run "$work/million.txt" "$big_inc" m
  record=$(stat -c %s "$big_inc/backups/.m.record")
  awk -v rec="$record" 'NR == 1 { printf "1,000,000 files: full %.1f s, peak RSS %.1f MiB; ", $1 / 1000, $3 / 1024 }
    NR == 2 { printf "incremental %.1f s, peak RSS %.1f MiB; record %.0f MB\n", $1 / 1000, $3 / 1024, rec / 1e6 }' "$work/million.txt"
  head -1 "$work/million.txt" > "$work/million-full.txt"
  full_backup "1,000,000 files, full" "$(cut -d' ' -f2 "$work/million-full.txt")" "$work/million-full.txt"
  rm -rf "$big_inc" "$work/million"
  section_end
fi

if want service; then
  section_start service
  service_home="$work/home"
  mkdir -p "$service_home"
  "$bin/backup_manager" --home "$service_home" start
  sleep 2
  pid=$(cat "$service_home/.backup_service.pid")
  rss=$(awk '/^VmRSS/ { print $2 }' "/proc/$pid/status")
  awk -v r="$rss" 'BEGIN { printf "idle backup_service: RSS %.1f MiB\n", r / 1024 }'
  "$bin/backup_manager" --home "$service_home" stop

  # At scale: 10,000 schedules, none due while measured (all twelve hours away), each
  # seen by the service. Idle RSS after a look, and `list`'s median time of 11 runs.
  big_home="$work/big"
  mkdir -p "$big_home"
  hour=$(( (10#$(date +%H) + 12) % 24 ))
  for i in $(seq 0 9999); do
    printf 'src_%d;%02d:%02d;archive_%d\n' "$i" "$hour" $(( i % 60 )) "$i"
  done > "$big_home/backup_schedules.txt"
  service_home="$big_home"
  "$bin/backup_manager" --home "$big_home" start
  sleep 2
  pid=$(cat "$big_home/.backup_service.pid")
  kill -HUP "$pid"  # a second look, now with every record in the state file
  sleep 2
  rss=$(awk '/^VmRSS/ { print $2 }' "/proc/$pid/status")
  awk -v r="$rss" 'BEGIN { printf "idle backup_service, 10,000 schedules: RSS %.1f MiB\n", r / 1024 }'
  "$bin/backup_manager" --home "$big_home" stop
  for _ in $(seq 11); do
    start=$(date +%s%N)
    "$bin/backup_manager" --home "$big_home" list >/dev/null
    end=$(date +%s%N)
    echo $(( (end - start) / 1000 ))
  done | sort -n | awk '{ t[NR] = $1 } END { printf "list of 10,000 schedules: median %.1f ms\n", t[6] / 1000 }'
  service_home=""
  section_end
fi

if want encryption; then
  # The same zstd backup of each tree, sealed to one age key and not: the goal is at
  # most 1.1x. The trees' data is random, so zstd passes it through and encryption
  # weighs as much as it ever can.
  section_start encryption
  age-keygen -o "$work/age-key.txt" 2>/dev/null
  recipient=$(grep -o 'age1[0-9a-z]*' "$work/age-key.txt")
  zstd_plain=("$ours" "$work/small" "$work/out/ours.tar" zstd)
  zstd_sealed=("$ours" "$work/small" "$work/out/ours.tar" zstd "encrypt=$recipient")
  versus "small tree, zstd encrypted to one age key against zstd" zstd_sealed zstd_plain
  full_backup "small tree, zstd encrypted" "$(tail -1 "$work/a.txt" | cut -d' ' -f3)" "$work/a.txt"
  full_backup "small tree, zstd" "$(tail -1 "$work/b.txt" | cut -d' ' -f3)" "$work/b.txt"
  zstd_plain=("$ours" "$work/large" "$work/out/ours.tar" zstd)
  zstd_sealed=("$ours" "$work/large" "$work/out/ours.tar" zstd "encrypt=$recipient")
  versus "large tree, zstd encrypted to one age key against zstd" zstd_sealed zstd_plain
  full_backup "large tree, zstd encrypted" "$(tail -1 "$work/a.txt" | cut -d' ' -f3)" "$work/a.txt"
  full_backup "large tree, zstd" "$(tail -1 "$work/b.txt" | cut -d' ' -f3)" "$work/b.txt"
  section_end
fi

if want browse; then
  section_start browse
  source "$root/scripts/bench-browse.sh"
  section_end
fi
if want restore; then
  source "$root/scripts/bench-restore.sh"
fi
echo "Load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
