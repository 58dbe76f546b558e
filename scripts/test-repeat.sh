#!/usr/bin/env bash
# npm run test:repeat -- N: runs the tap suite N times (after one type check) and prints how many
# runs passed, to show that the suite is stable. Extra arguments go to tap (e.g. a test file).
set -uo pipefail
n=${1:-10}
shift || true
if ! [[ "$n" =~ ^[0-9]+$ ]] || [ "$n" -lt 1 ]; then
  echo "usage: npm run test:repeat -- N [tap arguments]" >&2
  exit 64
fi
npx tsc --noEmit || exit 1
passed=0
for i in $(seq 1 "$n"); do
  log=$(mktemp)
  if npx tap --disable-coverage "$@" >"$log" 2>&1; then
    passed=$((passed + 1))
    echo "run $i/$n: passed"
  else
    echo "run $i/$n: FAILED"
    grep -E '^\s*not ok' "$log" | head -20
  fi
  rm -f "$log"
done
echo "$passed of $n runs passed"
[ "$passed" -eq "$n" ]
