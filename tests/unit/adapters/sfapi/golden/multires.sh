#!/bin/bash
#SBATCH --job-name=bl832_multires_20230606_151124_fungi1
#SBATCH --account=als
#SBATCH --qos=realtime
#SBATCH --constraint=cpu
#SBATCH --nodes=1
#SBATCH --time=00:30:00
#SBATCH --output=/global/cfs/cdirs/als/data_mover/logs/splash/bl832_multires_20230606_151124_fungi1-%j.out
# Rendered by splash_core (SFAPI adapter), job kind multires. Every value below is shell-quoted.
set -euo pipefail

echo "[splash] job ${SLURM_JOB_ID:-unknown} started on $(hostname) at $(date -u +%Y-%m-%dT%H:%M:%SZ)"
mkdir -p -- /pscratch/sd/a/alsdev/8.3.2/scratch/BLS-00123
status=0
srun podman-hpc run --rm \
    --volume=/pscratch/sd/a/alsdev/8.3.2/scratch/BLS-00123:/pscratch/sd/a/alsdev/8.3.2/scratch/BLS-00123 \
    registry.nersc.gov/als/splash-core:1.0 \
    python -m splash_core.processing --verbose multires --levels 4 --overwrite /pscratch/sd/a/alsdev/8.3.2/scratch/BLS-00123/rec20230606_151124_fungi1 /pscratch/sd/a/alsdev/8.3.2/scratch/BLS-00123/rec20230606_151124_fungi1.zarr || status=$?
echo "[splash] container exited with status ${status}"
if [ "${status}" -ne 0 ]; then
    exit "${status}"
fi
if [ ! -e /pscratch/sd/a/alsdev/8.3.2/scratch/BLS-00123/rec20230606_151124_fungi1.zarr ]; then
    echo "[splash] expected output is missing: "/pscratch/sd/a/alsdev/8.3.2/scratch/BLS-00123/rec20230606_151124_fungi1.zarr >&2
    exit 3
fi
echo "[splash] job ${SLURM_JOB_ID:-unknown} finished at $(date -u +%Y-%m-%dT%H:%M:%SZ)"
