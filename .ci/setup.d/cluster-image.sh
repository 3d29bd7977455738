#!/usr/bin/env bash
# Builds the test cluster's node image during setup (about 90 s, once; then cached under
# ${ORAMA_CACHE_DIR:-/var/cache/orama-provision}/images), so the first test does not pay for it.
set -euo pipefail
cd "$(dirname "$0")/../.."
node --import tsx/esm -e "
  const { clusterConfig } = await import('./src/cluster/config.ts');
  const { ensureImage } = await import('./src/cluster/image.ts');
  const p = await ensureImage(clusterConfig(), (m) => console.log('setup: ' + m));
  console.log('setup: test cluster image ' + p);
"
