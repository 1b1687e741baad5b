#!/usr/bin/env bash
# Every benchmark in turn, figures printed for people; `make bench` runs this.
# Each command also takes --format json for one JSON object per run.
set -euo pipefail
taskwheel bench --store sqlite --jobs 20000 --workers 2 --format table
# PostgreSQL when a server is named (a schema of the benchmark's own, dropped afterwards).
if [[ "${TASKWHEEL_DATABASE_URL:-}" == postgres* ]]; then
    taskwheel bench --store postgres --jobs 20000 --workers 2 --format table
fi
taskwheel bench schedules --schedules 10000 --format table
taskwheel bench schedules --schedules 100000 --format table
taskwheel bench failover --format table
taskwheel bench workflows --steps 1000 --format table
taskwheel bench watching --runs 5 --format table
taskwheel bench features --jobs 20000 --repeat 3 --format table
taskwheel bench scale --format table   # the full run: --finished 10000000 --scheduled 1000000 --schedules 1000000
taskwheel bench --store sqlite dispatch --format table
if [[ "${TASKWHEEL_DATABASE_URL:-}" == postgres* ]]; then
    taskwheel bench --store postgres dispatch --format table
fi
