# The restore section of scripts/bench.sh, sourced by it (it sets work, bin, runs, median,
# small_tree):
# a whole restore with backup_manager against GNU tar's `tar -xf` (and bsdtar's, if
# installed) of the same archive, on the small and large trees, plain and zstd. Every
# restore goes into a tmpfs, so that what is timed is the engine and not the disk; the
# archives are read from the page cache (one untimed run of each first). Runs alternate
# (ours, GNU tar, bsdtar, ours...), RUNS of each, the destination emptied before each.
# Prints every run's milliseconds and CPU seconds (user+sys), the medians and the ratios.
# Needs root (to mount the tmpfs) or RESTORE_DEST set to an empty folder on a tmpfs.
# For a quick check on a small scale:
#   RESTORE_FILES=2000 RESTORE_LARGE_MIB=16 scripts/bench.sh 1 restore

files=${RESTORE_FILES:-50000}
large_mib=${RESTORE_LARGE_MIB:-512}
manager="$bin/backup_manager"
home="$work/restore"
mkdir -p "$home"

# The trees, as the archive section makes them (at the scale asked for).
small_tree "$home/small" "$files"
mkdir -p "$home/large"
for i in 1 2 3 4; do
  head -c $((large_mib << 20)) /dev/urandom > "$home/large/file$i.bin"
done

# One schedule a tree and compression, each backed up once.
n=0
for tree in small large; do
  for packing in plain zstd; do
    if [ "$packing" = zstd ]; then
      "$manager" --home "$home" create --compress zstd "$home/$tree;03:00;$tree-$packing" >/dev/null
    else
      "$manager" --home "$home" create "$home/$tree;03:00;$tree-$packing" >/dev/null
    fi
    "$manager" --home "$home" run "$n" >/dev/null
    n=$((n + 1))
  done
done
rm -rf "$home/small" "$home/large"

mounted=""
if [ -n "${RESTORE_DEST:-}" ]; then
  dest=$RESTORE_DEST
elif [ "$(id -u)" -ne 0 ]; then
  echo "restore: skipped, mounting a tmpfs needs root (or set RESTORE_DEST to an empty folder on one)"
  return 0
else
  dest="$work/restore-tmpfs"
  mkdir -p "$dest"
  mount -t tmpfs -o size=$(( (files * 20 + 4 * large_mib * 1024) * 2 + 65536 ))k tmpfs "$dest"
  mounted=$dest
fi
unmount_dest() { if [ -n "$mounted" ]; then umount "$mounted"; mounted=""; fi; }
trap 'unmount_dest; cleanup' EXIT

# Runs one restore into an emptied $dest/out; appends "MILLISECONDS CPU_SECONDS" to $1.
restore_run() {
  local into=$1; shift
  rm -rf "$dest/out"
  mkdir "$dest/out"
  local start end
  start=$(date +%s%N)
  if ! /usr/bin/time -f "%U %S" -o "$work/cpu" "$@" >/dev/null 2>"$work/stderr"; then
    cat "$work/stderr" >&2
    return 1
  fi
  end=$(date +%s%N)
  echo "$(( (end - start) / 1000000 )) $(awk '{ print $1 + $2 }' "$work/cpu")" >> "$into"
}

bsdtar=$(command -v bsdtar || true)
# The command of tool $1 (ours, gnu, bsd) on the archive $2 named $3, into $dest/out, as
# the array cmd.
command_of() {
  case $1 in
    ours) cmd=("$manager" --home "$home" restore "$3" "$dest/out") ;;
    gnu) cmd=(tar); [[ $2 == *.zst ]] && cmd+=(--zstd); cmd+=(-xf "$2" -C "$dest/out") ;;
    bsd) cmd=("$bsdtar" -xf "$2" -C "$dest/out") ;;
  esac
}
tools=(ours gnu)
[ -n "$bsdtar" ] && tools+=(bsd)
for tree in small large; do
  for packing in plain zstd; do
    name=$tree-$packing
    archive="$home/backups/$name.tar"
    [ "$packing" = zstd ] && archive="$archive.zst"
    for tool in "${tools[@]}"; do
      rm -f "$work/$tool.txt"
      command_of "$tool" "$archive" "$name"
      restore_run /dev/null "${cmd[@]}"
    done
    for _ in $(seq "$runs"); do
      for tool in "${tools[@]}"; do
        command_of "$tool" "$archive" "$name"
        restore_run "$work/$tool.txt" "${cmd[@]}"
      done
    done
    for tool in "${tools[@]}"; do
      echo "restore $name, $tool: ms $(cut -d' ' -f1 "$work/$tool.txt" | tr '\n' ' ')cpu s $(cut -d' ' -f2 "$work/$tool.txt" | tr '\n' ' ')"
    done
    o=$(cut -d' ' -f1 "$work/ours.txt" | median)
    oc=$(cut -d' ' -f2 "$work/ours.txt" | median)
    for tool in "${tools[@]:1}"; do
      t=$(cut -d' ' -f1 "$work/$tool.txt" | median)
      tc=$(cut -d' ' -f2 "$work/$tool.txt" | median)
      label=$([ "$tool" = gnu ] && echo "GNU tar" || echo bsdtar)
      awk -v o="$o" -v t="$t" -v oc="$oc" -v tc="$tc" -v n="$name" -v l="$label" 'BEGIN {
        printf "restore %s: median ours %.2f s, %s %.2f s (%.2fx); CPU ours %.2f s, %s %.2f s (%.2fx)\n",
          n, o / 1000, l, t / 1000, o / t, oc, l, tc, (tc > 0 ? oc / tc : 0) }'
    done
  done
done
rm -rf "$dest/out"
unmount_dest
trap cleanup EXIT
