#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Prints, one per line, the Debian packages that hold the shared libraries BINARY... need (their
# NEEDED entries, resolved by ldd, owned per dpkg -S), minus those every debian:12-slim image has
# (libc6; libstdc++6 and libgcc-s1, which apt depends on). service.Dockerfile installs exactly
# these in its runtime stage; tests/deploy/check_dockerfiles.py computes the same set on its own.
#   runtime-packages.sh BINARY...
set -euo pipefail
owner() {  # PATH: the package owning it; usrmerge means dpkg may know it with or without /usr
  local p o
  for p in "$1" "$(readlink -f "$1")" "${1#/usr}" "/usr$1"; do
    o=$(dpkg -S "$p" 2> /dev/null) && { echo "${o%%:*}"; return 0; }
  done
  echo "runtime-packages: no Debian package holds $1" >&2
  return 1
}
all=()
for bin in "$@"; do
  libs=$(ldd "$bin")
  for so in $(readelf -d "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
    path=$(awk -v s="$so" '$1 == s && $2 == "=>" {print $3}' <<< "$libs")
    [ -n "$path" ] || { echo "runtime-packages: $bin: $so not found" >&2; exit 1; }
    all+=("$(owner "$path")")
  done
done
printf '%s\n' "${all[@]}" | sort -u | grep -vx -e libc6 -e libgcc-s1 -e 'libstdc++6' || true
