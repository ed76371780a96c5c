#!/bin/bash
#SBATCH --job-name=hpss-restore-P1_2024-1.tar
#SBATCH --account=als
#SBATCH --qos=xfer
#SBATCH --nodes=1
#SBATCH --time=12:00:00
#SBATCH --output=/global/cfs/cdirs/als/data_mover/logs/hpss/hpss-restore-P1_2024-1.tar-%j.out
#SBATCH --mem=20GB
# Rendered by splash_core (SFAPI adapter): restore members of tape bundle P1_2024-1.tar with htar.
set -euo pipefail
echo "[splash] job ${SLURM_JOB_ID:-unknown}: htar restore started at $(date -u +%Y-%m-%dT%H:%M:%SZ)"
DEST_ROOT=/global/cfs/cdirs/als/data_mover/7.3.3/restore
TAPE_FILE=/home/a/alsdev/data_mover/nersc733_alsdev_raw/P1/P1_2024-1.tar
WORK="$(mktemp -d "${TMPDIR:-/tmp}/splash-hpss.XXXXXX")"
trap 'rm -f -- "${WORK}/members" "${WORK}/expected"; rmdir -- "${WORK}" 2>/dev/null || true' EXIT
base64 -d > "${WORK}/members" <<'SPLASH_END_OF_LIST'
UDEvc3ViL3NjYW4nMDAyLnRpZgo=
SPLASH_END_OF_LIST
base64 -d > "${WORK}/expected" <<'SPLASH_END_OF_LIST'
MjA0OAlQMS9zdWIvc2NhbicwMDIudGlmCg==
SPLASH_END_OF_LIST
mkdir -p -- "${DEST_ROOT}"
cd -- "${DEST_ROOT}"
htar -xvf "${TAPE_FILE}" -L "${WORK}/members"
bad=0
while IFS=$'\t' read -r size path; do
    if [ ! -f "${path}" ]; then
        echo "[splash] not restored: ${path}" >&2
        bad=1
        continue
    fi
    actual="$(stat -c %s -- "${path}")"
    if [ "${actual}" != "${size}" ]; then
        echo "[splash] restored ${path} is ${actual} bytes, expected ${size}" >&2
        bad=1
    fi
done < "${WORK}/expected"
if [ "${bad}" -ne 0 ]; then
    exit 4
fi
echo "[splash] restored every member"
