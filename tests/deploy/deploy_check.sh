#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The offline checks of deploy/ that ctest runs (tests/deploy/CMakeLists.txt), one per subcommand:
#   helm_lint        `helm lint --strict` on the chart, with default and non-default values
#   manifests_fresh  deploy/manifests/sockmesh.yaml equals a fresh render of the chart
#   schemas          every rendered object (default values and every optional feature on) and
#                    every example validates: Kubernetes OpenAPI schemas, CRD schemas, API server
#                    rules (tests/deploy/check_deploy.cjs)
#   checker_fails    the checker rejects each broken manifest in tests/deploy/broken/ with the
#                    problem its "# expect-problem:" line names (the checks can fail)
#   examples         the valid examples pass the schemas and `sockmeshctl validate`; the invalid
#                    ones in tests/deploy/invalid/ fail both, naming the same field
#   dashboard        the Grafana dashboard queries only metrics the sources define
#   dockerfiles      deploy/images/*.Dockerfile: COPY sources exist, the builder runs CI's
#                    scripts, the runtime stage installs exactly the packages of the libraries
#                    the built binaries link
# Environment: SOCKMESH_DEPLOY_TOOLS (setup_tools.sh's directory), SOCKMESHCTL, and for
# dockerfiles SOCKMESH_BUILD_DIR (where the copied binaries are built).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
here=$root/tests/deploy
tools=${SOCKMESH_DEPLOY_TOOLS:?set by ctest: the directory tests/deploy/setup_tools.sh filled}
helm=$tools/bin/helm
chart=$root/deploy/helm/sockmesh
crds=$chart/crds
check() { node "$here/check_deploy.cjs" "$@"; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Values that turn every optional part of the chart on, so the schemas see all of it.
variants=(
  ""
  "--set monitoring.serviceMonitor.enabled=true --set monitoring.grafanaDashboard.enabled=true"
  "--set agent.cleanupOnly=true"
  "--set agent.metrics.enabled=false --set controlPlane.metrics.enabled=false --set agent.allowRootCgroup=true --set agent.extraArgs={--max-services=100}"
)

case ${1:-} in
  helm_lint)
    for v in "${variants[@]}"; do
      # shellcheck disable=SC2086
      "$helm" lint --strict "$chart" --namespace kube-system $v
    done
    ;;
  manifests_fresh)
    bash "$root/scripts/render-manifests.sh" --helm "$helm" --check
    ;;
  schemas)
    i=0
    for v in "${variants[@]}"; do
      # shellcheck disable=SC2086
      "$helm" template sockmesh "$chart" --namespace kube-system --include-crds $v > "$work/$i.yaml"
      i=$((i + 1))
    done
    check manifests "$crds" "$work"/*.yaml "$root/deploy/manifests/sockmesh.yaml" \
      "$root"/deploy/examples/kubernetes/*.yaml
    ;;
  checker_fails)
    failed=0
    for f in "$here"/broken/*.yaml; do
      want=$(sed -n 's/^# expect-problem: //p' "$f")
      [ -n "$want" ] || { echo "$f: no '# expect-problem:' line" >&2; failed=1; continue; }
      if out=$(check manifests "$crds" "$f" 2>&1); then
        echo "$f: the checker accepts it (expected: $want)" >&2
        failed=1
      elif ! grep -qF -- "$want" <<< "$out"; then
        echo "$f: the checker fails without naming \"$want\":" >&2
        echo "$out" >&2
        failed=1
      else
        echo "$(basename "$f"): rejected: $want"
      fi
    done
    exit $failed
    ;;
  examples)
    ctl=${SOCKMESHCTL:?set by ctest: the sockmeshctl binary}
    check accept "$crds" "$ctl" "$root"/deploy/examples/kubernetes/*.yaml
    check reject "$crds" "$ctl" "$here"/invalid/*.yaml
    ;;
  dashboard)
    check dashboard "$chart/dashboards/sockmesh.json" "$root" "$here/pending_metrics.txt"
    ;;
  dockerfiles)
    python3 "$here/check_dockerfiles.py" "$root" "${SOCKMESH_BUILD_DIR:?set by ctest: the build tree}"
    ;;
  *)
    echo "usage: deploy_check.sh helm_lint|manifests_fresh|schemas|checker_fails|examples|dashboard|dockerfiles" >&2
    exit 2
    ;;
esac
