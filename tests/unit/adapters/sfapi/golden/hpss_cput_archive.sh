#!/bin/bash
#SBATCH --job-name=hpss-archive-P1_huge_scan.h5
#SBATCH --account=als
#SBATCH --qos=xfer
#SBATCH --nodes=1
#SBATCH --time=12:00:00
#SBATCH --output=/global/cfs/cdirs/als/data_mover/logs/hpss/hpss-archive-P1_huge_scan.h5-%j.out
#SBATCH --mem=20GB
# Rendered by splash_core (SFAPI adapter): write tape bundle P1_huge_scan-8756d942b2.h5 with hsi cput.
set -euo pipefail
echo "[splash] job ${SLURM_JOB_ID:-unknown}: hsi cput started at $(date -u +%Y-%m-%dT%H:%M:%SZ)"
SOURCE_FILE='/global/cfs/cdirs/als/data_mover/7.3.3/raw/P1/huge scan.h5'
EXPECTED_SIZE=70000000000
if [ ! -f "${SOURCE_FILE}" ] || [ -L "${SOURCE_FILE}" ]; then
    echo "[splash] the file is missing or not a regular file: ${SOURCE_FILE}" >&2
    exit 3
fi
actual="$(stat -c %s -- "${SOURCE_FILE}")"
if [ "${actual}" != "${EXPECTED_SIZE}" ]; then
    echo "[splash] ${SOURCE_FILE} is ${actual} bytes, planned ${EXPECTED_SIZE}; nothing was written to tape" >&2
    exit 3
fi
WORK="$(mktemp -d "${TMPDIR:-/tmp}/splash-hpss.XXXXXX")"
trap 'rm -f -- "${WORK}/member"; rmdir -- "${WORK}" 2>/dev/null || true' EXIT
# hsi parses file names itself, so the file reaches it under a plain name
ln -s -- "${SOURCE_FILE}" "${WORK}/member"
cd -- "${WORK}"
hsi -q 'mkdir -p /home/a/alsdev/data_mover/nersc733_alsdev_raw/P1'
hsi -q 'cput -c on member : /home/a/alsdev/data_mover/nersc733_alsdev_raw/P1/huge_scan-9e27cec9e1.h5'
echo "[splash] hsi cput wrote "/home/a/alsdev/data_mover/nersc733_alsdev_raw/P1/huge_scan-9e27cec9e1.h5
