#!/bin/bash
#SBATCH --job-name=hpss-archive-P1_2024-1.tar
#SBATCH --account=als
#SBATCH --qos=xfer
#SBATCH --nodes=1
#SBATCH --time=12:00:00
#SBATCH --output=/global/cfs/cdirs/als/data_mover/logs/hpss/hpss-archive-P1_2024-1.tar-%j.out
#SBATCH --mem=20GB
# Rendered by splash_core (SFAPI adapter): write tape bundle P1_2024-1.tar with htar.
set -euo pipefail
echo "[splash] job ${SLURM_JOB_ID:-unknown}: htar archive started at $(date -u +%Y-%m-%dT%H:%M:%SZ)"
SOURCE_ROOT=/global/cfs/cdirs/als/data_mover/7.3.3/raw
TAPE_DIR=/home/a/alsdev/data_mover/nersc733_alsdev_raw/P1
TAPE_FILE=/home/a/alsdev/data_mover/nersc733_alsdev_raw/P1/P1_2024-1.tar
WORK="$(mktemp -d "${TMPDIR:-/tmp}/splash-hpss.XXXXXX")"
trap 'rm -f -- "${WORK}/members" "${WORK}/expected"; rmdir -- "${WORK}" 2>/dev/null || true' EXIT
base64 -d > "${WORK}/members" <<'SPLASH_END_OF_LIST'
UDEvc2NhbiAwMDEudGlmClAxL3N1Yi9zY2FuJzAwMi50aWYK
SPLASH_END_OF_LIST
base64 -d > "${WORK}/expected" <<'SPLASH_END_OF_LIST'
MTAyNAlQMS9zY2FuIDAwMS50aWYKMjA0OAlQMS9zdWIvc2NhbicwMDIudGlmCg==
SPLASH_END_OF_LIST
cd -- "${SOURCE_ROOT}"
bad=0
while IFS=$'\t' read -r size path; do
    if [ ! -f "${path}" ] || [ -L "${path}" ]; then
        echo "[splash] member is missing or not a regular file: ${path}" >&2
        bad=1
        continue
    fi
    actual="$(stat -c %s -- "${path}")"
    if [ "${actual}" != "${size}" ]; then
        echo "[splash] member ${path} is ${actual} bytes, planned ${size}" >&2
        bad=1
    fi
done < "${WORK}/expected"
if [ "${bad}" -ne 0 ]; then
    echo "[splash] the bundle does not match its plan; nothing was written to tape" >&2
    exit 3
fi
hsi -q 'mkdir -p /home/a/alsdev/data_mover/nersc733_alsdev_raw/P1'
htar -cvf "${TAPE_FILE}" -L "${WORK}/members"
echo "[splash] htar wrote ${TAPE_FILE}"
