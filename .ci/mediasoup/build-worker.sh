#!/usr/bin/env bash
# Builds mediasoup's C++ worker (mediasoup-worker) with only Debian 12 packages and the npm
# registry: mediasoup's own postinstall would download a prebuilt binary or meson subprojects,
# neither reachable here. The worker is linked against Debian's libuv, OpenSSL, flatbuffers,
# abseil and libsrtp2; the patch beside this script ports the worker's SRTP session from the
# libsrtp3 fork's API to libsrtp 2.x (see docs/sfu.md "mediasoup worker").
#
# Cached by version + hash of this script and the patch:
#   ${ORAMA_CACHE_DIR:-/var/cache/orama-provision}/mediasoup/<version>-<hash>/mediasoup-worker
# Prints that path on its last line. A second run with the same inputs only checks.
# Build needs (apt, listed in .ci/apt-packages): g++ make patch pkg-config meson ninja-build
# flatbuffers-compiler libflatbuffers-dev libuv1-dev libssl-dev libsrtp2-dev libabsl-dev.
set -euo pipefail
MS_VERSION=3.27.1
here=$(cd "$(dirname "$0")" && pwd)
patch="$here/mediasoup-$MS_VERSION-debian12-system-libs.patch"
hash=$(cat "$0" "$patch" | sha256sum | cut -c1-12)
dir="${ORAMA_CACHE_DIR:-/var/cache/orama-provision}/mediasoup/$MS_VERSION-$hash"
out="$dir/mediasoup-worker"

if [ -x "$out" ] && [ -f "$dir/ok" ]; then echo "$out"; exit 0; fi

for tool in g++ meson ninja pkg-config flatc patch; do
  command -v "$tool" >/dev/null || { echo "build-worker: '$tool' not found (apt-get install the packages in .ci/apt-packages)" >&2; exit 1; }
done
for lib in libuv openssl libsrtp2 flatbuffers absl_strings; do
  pkg-config --exists "$lib" || { echo "build-worker: development files of '$lib' not found (pkg-config $lib; see .ci/apt-packages)" >&2; exit 1; }
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
npm pack "mediasoup@$MS_VERSION" --silent >/dev/null
tar xzf "mediasoup-$MS_VERSION.tgz"
cd package/worker
patch -s -p1 < "$patch"
meson setup build --buildtype=release -Db_ndebug=true -Db_pie=true -Dms_use_builtin_bwe=false >"$work/meson.log" 2>&1 \
  || { tail -40 "$work/meson.log" >&2; exit 1; }
ninja -C build -j"${JOBS:-$(nproc)}" mediasoup-worker >"$work/ninja.log" 2>&1 \
  || { grep -B2 -A8 'error' "$work/ninja.log" | head -60 >&2; exit 1; }
mkdir -p "$dir"
install -m 0755 build/mediasoup-worker "$out.tmp"
strip "$out.tmp"
mv "$out.tmp" "$out"
touch "$dir/ok"
echo "$out"
