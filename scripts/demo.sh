#!/usr/bin/env bash
# The brief's walkthrough, run for real: builds the release binaries, then, in a fresh
# temporary home, creates three schedules for the current minute, starts and stops the
# service, and shows what it left behind.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
# The first build takes a few minutes: cargo shows how far it got (on stderr); later
# builds are instant and say only that they finished.
echo "--> Building the release binaries (the first build takes a few minutes)"
cargo build --release --manifest-path "$root/Cargo.toml"
bin="$root/target/release"
export PATH="$bin:$PATH"

home=$(mktemp -d "${TMPDIR:-/tmp}/backup-demo.XXXXXX")
cd "$home"
mkdir -p test/sub test1 test2
echo "hello" > test/hello.txt
echo "nested" > test/sub/nested.txt
echo "private" > test1/personal.txt
echo "report" > test2/report.txt

# The schedules are for the current minute. Leave a safe margin before the minute turns,
# or the service would see them only after their time and wait for tomorrow.
if [ "$(date +%S)" -ge 50 ]; then
  sleep $((61 - 10#$(date +%S)))
fi
now=$(date +%H:%M)

echo "--> Create 3 new schedules"
backup_manager create "test;$now;backup_test"
backup_manager create "test1;$now;personal_data"
backup_manager create "test2;$now;office_docs"
echo "--> Try to add a malformed schedule"
backup_manager create "test;" || true
echo "--> Instruction list"
backup_manager list
backup_manager start
backup_manager stop
echo "--> Instruction backups"
backup_manager backups
echo "--> Content of the directory"
ls
echo "--> cat on ./logs/backup_manager.log"
cat ./logs/backup_manager.log
echo "--> cat on ./logs/backup_service.log"
cat ./logs/backup_service.log
echo "--> Content of ./backups"
ls ./backups
echo "--> Content of ./backups/backup_test.tar"
tar -tvf ./backups/backup_test.tar
echo "--> The home was $home"
