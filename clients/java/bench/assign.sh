#!/usr/bin/env bash
# Local experiment assignment, Java SDK against the Python implementation (croupier.api.assignment.Assigner, what
# the runtime and the Python SDK run), same units, same weights, same machine, one run: ns per assignment.
# Usage: clients/java/bench/assign.sh [units]   (from the repository root; needs `make sync` and Maven)
set -euo pipefail
cd "$(dirname "$0")/../../.."
n="${1:-200000}"
repo="${CROUPIER_CACHE:-$HOME/.cache/croupier}/m2"
(cd clients/java && mvn -B -q -Dmaven.repo.local="$repo" test-compile \
  && mvn -B -q -Dmaven.repo.local="$repo" dependency:build-classpath -Dmdep.outputFile=target/classpath.txt)
cp="clients/java/target/classes:clients/java/target/test-classes:$(cat clients/java/target/classpath.txt)"
java_out="$(java -cp "$cp" dev.croupier.client.bench.AssignBench "$n")"
python_out="$(.venv/bin/python - "$n" <<'PY'
import sys, time
from croupier.api.assignment import Assigner
n = int(sys.argv[1])
weights = [("control", 34), ("bandit", 33), ("ranker-v2", 33)]
units = [f"user-{i}" for i in range(n)]
for algorithm in ("sha256-v1", "fnv1a32-v2", "fnv1a32-v1"):
    assign = Assigner("checkout-offer-2025-q1", weights, algorithm).assign
    for unit in units:
        assign(unit)
    best = min(
        (lambda s: (sum(1 for u in units if assign(u)), time.perf_counter() - s)[1])(time.perf_counter())
        for _ in range(5)
    )
    print(algorithm, f"{best / n * 1e9:.1f}")
PY
)"
echo "units per round: $n; best of 5 rounds; ns per assignment"
printf '%-12s %12s %12s %8s\n' scheme java python ratio
paste -d' ' <(echo "$java_out") <(echo "$python_out") | while read -r scheme java _ _ python; do
  printf '%-12s %12s %12s %7.1fx\n' "$scheme" "$java" "$python" "$(echo "$python / $java" | bc -l)"
done
