#!/usr/bin/env bash
# Installs rqlited (the namespace cluster's distributed SQLite) for the store's tests and the
# gateway's rqlite driver into ${ORAMA_CACHE_DIR:-/var/cache/orama-provision}/bin/rqlited.
# `go install …/cmd/rqlited@v8.x` fails behind the module proxy (403 on @v/list), so the module is
# fetched by exact version through a throwaway module and built from the module cache.
set -euo pipefail
RQLITE_VERSION=v8.36.0
bin_dir="${ORAMA_CACHE_DIR:-/var/cache/orama-provision}/bin"
out="$bin_dir/rqlited"

# rqlited prints its version on stderr.
if [ -x "$out" ] && "$out" -version 2>&1 | grep -q "rqlited $RQLITE_VERSION "; then
  exit 0
fi
export PATH="$PATH:/usr/local/go/bin:$HOME/go/bin"
command -v go >/dev/null || { echo "setup.d/rqlite: go toolchain not found (needed to build rqlited $RQLITE_VERSION)" >&2; exit 1; }
echo "setup.d/rqlite: building rqlited $RQLITE_VERSION into $out"
mkdir -p "$bin_dir"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat > "$tmp/go.mod" <<MOD
module orama.local/rqlite-fetch

go 1.21

require github.com/rqlite/rqlite/v8 $RQLITE_VERSION
MOD
(cd "$tmp" && GOFLAGS=-mod=mod go mod download github.com/rqlite/rqlite/v8)
src="$(go env GOMODCACHE)/github.com/rqlite/rqlite/v8@$RQLITE_VERSION"
(cd "$src" && GOFLAGS=-mod=mod CGO_ENABLED=1 go build \
  -ldflags "-X github.com/rqlite/rqlite/v8/cmd.Version=$RQLITE_VERSION" \
  -o "$tmp/rqlited" ./cmd/rqlited)
install -m 0755 "$tmp/rqlited" "$out"
"$out" -version
