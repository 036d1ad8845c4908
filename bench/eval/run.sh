#!/usr/bin/env bash
# bench/eval/run.sh - the issue 13 evaluation: nine ways to use one root filesystem, measured and
# written to bench/eval/REPORT.md with SVG charts (bench/eval/charts/). Needs root, /dev/fuse, loop
# devices, kernel EROFS, squashfuse_ll, mksquashfs, skopeo, umoci.
# Env: EVAL_SIZE [small] EVAL_RUNS [1] EVAL_OUT [bench/eval].
set -euo pipefail
cd "$(dirname "$0")/../.."
npx tsc -p . >/dev/null || true   # other areas may have type errors in progress; emit still happens
exec node dist/bench/eval/eval.js "$@"
