#!/bin/bash
#SBATCH --job-name=bl7012_ptycho_NS_230101_001
#SBATCH --account=als
#SBATCH --qos=realtime
#SBATCH --constraint=gpu
#SBATCH --nodes=1
#SBATCH --time=02:01:00
#SBATCH --output=/global/cfs/cdirs/als/data_mover/logs/splash/bl7012_ptycho_NS_230101_001-%j.out
#SBATCH --gpus-per-node=1
# Rendered by splash_core (SFAPI adapter), job kind ptycho. Every value below is shell-quoted.
set -euo pipefail

echo "[splash] job ${SLURM_JOB_ID:-unknown} started on $(hostname) at $(date -u +%Y-%m-%dT%H:%M:%SZ)"
mkdir -p -- /global/cfs/cdirs/als/gsharing/data_mover/7012/2023
status=0
srun podman-hpc run --rm \
    --volume=/global/cfs/cdirs/als/gsharing/data_mover/7012/2023:/global/cfs/cdirs/als/gsharing/data_mover/7012/2023 \
    --gpu \
    registry.nersc.gov/als/ptychocam:2.1 \
    ptychocam -i 500 -M /global/cfs/cdirs/als/gsharing/data_mover/7012/2023/NS_230101_001.cxi /global/cfs/cdirs/als/gsharing/data_mover/7012/2023/NS_230101_001_recon || status=$?
echo "[splash] container exited with status ${status}"
if [ "${status}" -ne 0 ]; then
    exit "${status}"
fi
if [ ! -e /global/cfs/cdirs/als/gsharing/data_mover/7012/2023/NS_230101_001_recon ]; then
    echo "[splash] expected output is missing: "/global/cfs/cdirs/als/gsharing/data_mover/7012/2023/NS_230101_001_recon >&2
    exit 3
fi
echo "[splash] job ${SLURM_JOB_ID:-unknown} finished at $(date -u +%Y-%m-%dT%H:%M:%SZ)"
