#!/usr/bin/env bash
# A taskwheel worker in bash, curl and jq, over the server's pull protocol.
#
# It registers, then claims one job at a time with a long poll, runs it as the shell
# function task_<name> with the job's arguments, heart-beats while it runs, and reports
# the outcome with the job's fencing token. A report answered 409 means the lease passed
# to another attempt: the outcome is dropped, as the protocol asks.
#
#   TASKWHEEL_URL=http://127.0.0.1:8080 TASKWHEEL_API_KEY=tw_... ./worker.sh
#
# Settings (environment): TASKWHEEL_NAMESPACE (default), TASKWHEEL_QUEUES (comma
# separated; default), TASKWHEEL_LEASE_TTL (seconds; 30), TASKWHEEL_WAIT (seconds a
# claim waits; 20), TASKWHEEL_BURST=1 to exit once a claim finds nothing.
set -euo pipefail

url=${TASKWHEEL_URL:?set TASKWHEEL_URL}
key=${TASKWHEEL_API_KEY:?set TASKWHEEL_API_KEY}
namespace=${TASKWHEEL_NAMESPACE:-default}
queues=${TASKWHEEL_QUEUES:-default}
lease_ttl=${TASKWHEEL_LEASE_TTL:-30}
wait=${TASKWHEEL_WAIT:-20}
burst=${TASKWHEEL_BURST:-0}
api="$url/api/v1/namespaces/$namespace"

# -- the tasks this worker runs: task_<name> ARGS... prints the result as JSON ----------

task_add() { jq -n --argjson a "$1" --argjson b "$2" '$a + $b'; }
task_ok() { echo '"ok"'; }
task_boom() { echo "boom" >&2; return 1; }

# -- the protocol -----------------------------------------------------------------------

# call METHOD PATH [BODY]: prints the answer's body, then its status on a line of its own.
call() {
    local body=()
    if [[ $# -ge 3 ]]; then body=(-H "Content-Type: application/json" -d "$3"); fi
    curl -sS -X "$1" "$api$2" -H "Authorization: Bearer $key" "${body[@]}" -w '\n%{http_code}'
}

# post PATH BODY: the answer's body; fails unless the status is 2xx (409 is returned).
post() {
    local answer status
    answer=$(call POST "$1" "$2")
    status=${answer##*$'\n'}
    if [[ $status == 409 ]]; then return 9; fi
    if [[ $status != 2* ]]; then echo "worker: POST $1: $status ${answer%$'\n'*}" >&2; return 1; fi
    printf '%s' "${answer%$'\n'*}"
}

queue_list=$(jq -cn --arg q "$queues" '$q | split(",")')
worker_id=$(post /workers "$(jq -cn --argjson q "$queue_list" \
    '{name: "bash", queues: $q, heartbeat_interval: 5}')" | jq -r .worker_id)
echo "worker: $worker_id serving $queues in $namespace" >&2
trap 'call DELETE "/workers/$worker_id" >/dev/null; exit 0' INT TERM

heartbeat() {  # heartbeat JOB_ID FENCE: every third of the lease while the job runs
    while sleep "$(jq -n --argjson t "$lease_ttl" '$t / 3')"; do
        post "/workers/$worker_id/heartbeat" \
            "{\"lease_ttl\": $lease_ttl, \"jobs\": {\"$1\": $2}}" >/dev/null || true
    done
}

run() {  # run JOB: report its outcome
    local job=$1 id fence task args result error status=0 report=0
    id=$(jq -r .id <<<"$job"); fence=$(jq -r .fence <<<"$job"); task=$(jq -r .task <<<"$job")
    mapfile -t args < <(jq -c '.args[]' <<<"$job")
    heartbeat "$id" "$fence" & local beating=$!
    if declare -F "task_$task" >/dev/null; then
        result=$("task_$task" "${args[@]}" 2>/tmp/taskwheel-worker.$$.err) || status=$?
        error=$(tail -c 4000 /tmp/taskwheel-worker.$$.err)
    else
        status=127 error="unknown task $task in this worker"
    fi
    kill "$beating" 2>/dev/null; wait "$beating" 2>/dev/null || true
    if [[ $status == 0 ]]; then
        post "/jobs/$id/complete" "$(jq -cn --argjson f "$fence" --argjson r "${result:-null}" \
            '{fence: $f, result: $r}')" >/dev/null || report=$?
    else
        post "/jobs/$id/fail" "$(jq -cn --argjson f "$fence" --arg e "exit $status: $error" \
            '{fence: $f, error: $e}')" >/dev/null || report=$?
    fi
    if [[ $report == 9 ]]; then echo "worker: job $id: stale fence, outcome dropped" >&2; fi
    echo "worker: job $id ($task) -> exit $status" >&2
}

while true; do
    claim=$(post /claims "$(jq -cn --arg w "$worker_id" --argjson q "$queue_list" \
        --argjson t "$lease_ttl" --argjson s "$wait" \
        '{worker_id: $w, queues: $q, limit: 1, lease_ttl: $t, wait: $s}')")
    job=$(jq -c '.jobs[0] // empty' <<<"$claim")
    if [[ -z $job ]]; then
        if [[ $burst == 1 ]]; then break; fi
        continue
    fi
    run "$job"
done
rm -f /tmp/taskwheel-worker.$$.err
call DELETE "/workers/$worker_id" >/dev/null
