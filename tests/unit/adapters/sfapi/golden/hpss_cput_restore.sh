#!/bin/bash
#SBATCH --job-name=hpss-restore-P1_huge_scan.h5
#SBATCH --account=als
#SBATCH --qos=xfer
#SBATCH --nodes=1
#SBATCH --time=12:00:00
#SBATCH --output=/global/cfs/cdirs/als/data_mover/logs/hpss/hpss-restore-P1_huge_scan.h5-%j.out
#SBATCH --mem=20GB
# Rendered by splash_core (SFAPI adapter): restore tape file P1_huge_scan-8756d942b2.h5 with hsi get.
set -euo pipefail
echo "[splash] job ${SLURM_JOB_ID:-unknown}: hsi get started at $(date -u +%Y-%m-%dT%H:%M:%SZ)"
DEST_FILE='/global/cfs/cdirs/als/data_mover/7.3.3/restore/P1/huge scan.h5'
EXPECTED_SIZE=70000000000
DEST_DIR="$(dirname -- "${DEST_FILE}")"
mkdir -p -- "${DEST_DIR}"
STAGE="$(mktemp -d "${DEST_DIR}/.splash-restore.XXXXXX")"
trap 'rm -f -- "${STAGE}/member"; rmdir -- "${STAGE}" 2>/dev/null || true' EXIT
cd -- "${STAGE}"
hsi -q 'get member : /home/a/alsdev/data_mover/nersc733_alsdev_raw/P1/huge_scan-9e27cec9e1.h5'
actual="$(stat -c %s -- "${STAGE}/member")"
if [ "${actual}" != "${EXPECTED_SIZE}" ]; then
    echo "[splash] restored file is ${actual} bytes, expected ${EXPECTED_SIZE}; not moved into place" >&2
    exit 4
fi
mv -f -- "${STAGE}/member" "${DEST_FILE}"
echo "[splash] restored "'/global/cfs/cdirs/als/data_mover/7.3.3/restore/P1/huge scan.h5'
