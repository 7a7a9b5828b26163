#!/usr/bin/env bash
# Runs the whole test suite. The tests use a few standard tools (libfaketime for the clock
# tests, bsdtar, age, rclone, fuse3, attr, acl, ssh-keygen and zstd); those that are missing are installed
# from Debian's packages first when this can (as root, or with sudo without a password).
# A test whose tool is still missing says so and skips that check.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(faketime libarchive-tools age rclone fuse3 attr acl openssh-client zstd)
commands=(faketime bsdtar age rclone fusermount3 setfattr setfacl ssh-keygen zstd)
missing=()
for i in "${!commands[@]}"; do
    command -v "${commands[$i]}" >/dev/null 2>&1 || missing+=("${packages[$i]}")
done
if [ ${#missing[@]} -gt 0 ] && command -v apt-get >/dev/null 2>&1; then
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
            sudo="sudo -n"
        else
            echo "scripts/test.sh: ${missing[*]} missing, and not root: their checks skip" >&2
            missing=()
        fi
    fi
    if [ ${#missing[@]} -gt 0 ]; then
        echo "scripts/test.sh: installing ${missing[*]}" >&2
        export DEBIAN_FRONTEND=noninteractive
        $sudo apt-get install -y -q "${missing[@]}" >/dev/null 2>&1 ||
            { $sudo apt-get update -q >/dev/null 2>&1 &&
                $sudo apt-get install -y -q "${missing[@]}" >/dev/null; } ||
            echo "scripts/test.sh: could not install ${missing[*]}: their checks skip" >&2
    fi
fi
exec cargo test --locked "$@"
