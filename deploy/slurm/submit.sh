#!/usr/bin/env bash
# Submits the extraction array (N tasks) and the merge job that waits for all of them:
#   deploy/slurm/submit.sh N [extra sbatch options...]
# with MESS, MESS_DATA_ROOT, MESS_DATASET_ARGS, MESS_MODEL, MESS_CATALOG, MESS_PUBLISH_TO in the environment
# (see extract_array.sbatch); the merge job gets MESS_SHARDS=N. Prints "<array job id> <merge job id>".
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
n=${1:?usage: submit.sh N [sbatch options...]}
shift
[[ $n =~ ^[1-9][0-9]*$ ]] || { echo "submit.sh: N must be a positive whole number, got '$n'" >&2; exit 1; }
array=$(sbatch --parsable --array="0-$((n - 1))" --export=ALL "$@" "$here/extract_array.sbatch")
merge=$(sbatch --parsable --dependency="afterok:${array}" --kill-on-invalid-dep=yes --export="ALL,MESS_SHARDS=$n" "$@" \
  "$here/merge.sbatch")
echo "$array $merge"
