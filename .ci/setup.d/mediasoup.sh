#!/usr/bin/env bash
# mediasoup's worker for the SFU's mediasoup engine: built once against Debian's libraries
# (.ci/mediasoup/build-worker.sh, about 6 min on 2 cores, cached by version + patch hash), then
# placed where the mediasoup package looks for it (mediasoup.workerBin). The package's own
# postinstall never runs (package.json allowScripts): it would download a prebuilt binary.
set -euo pipefail
cd "$(dirname "$0")/../.."
worker=$(bash .ci/mediasoup/build-worker.sh | tail -1)
dest=$(node -e "import('mediasoup').then((m) => console.log(m.workerBin))")
if ! cmp -s "$worker" "$dest"; then
  install -D -m 0755 "$worker" "$dest"
  echo "setup.d/mediasoup: $dest (from $worker)"
fi
