#!/bin/bash
#SBATCH --job-name=hpss-verify-P1_2024-1.tar
#SBATCH --account=als
#SBATCH --qos=xfer
#SBATCH --nodes=1
#SBATCH --time=12:00:00
#SBATCH --output=/global/cfs/cdirs/als/data_mover/logs/hpss/hpss-verify-P1_2024-1.tar-%j.out
#SBATCH --mem=20GB
# Rendered by splash_core (SFAPI adapter): list tape bundle P1_2024-1.tar for verification.
set -euo pipefail
TAPE_FILE=/home/a/alsdev/data_mover/nersc733_alsdev_raw/P1/P1_2024-1.tar
echo SPLASH-LISTING-BEGIN
htar -tvf "${TAPE_FILE}"
echo SPLASH-LISTING-END
