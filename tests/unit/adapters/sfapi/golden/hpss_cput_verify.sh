#!/bin/bash
#SBATCH --job-name=hpss-verify-P1_huge_scan.h5
#SBATCH --account=als
#SBATCH --qos=xfer
#SBATCH --nodes=1
#SBATCH --time=12:00:00
#SBATCH --output=/global/cfs/cdirs/als/data_mover/logs/hpss/hpss-verify-P1_huge_scan.h5-%j.out
#SBATCH --mem=20GB
# Rendered by splash_core (SFAPI adapter): list tape file P1_huge_scan-8756d942b2.h5 for verification.
set -euo pipefail
echo SPLASH-LISTING-BEGIN
hsi -q 'ls -l /home/a/alsdev/data_mover/nersc733_alsdev_raw/P1/huge_scan-9e27cec9e1.h5' 2>&1
echo SPLASH-LISTING-END
echo SPLASH-HASH-BEGIN
hsi -q 'hashlist /home/a/alsdev/data_mover/nersc733_alsdev_raw/P1/huge_scan-9e27cec9e1.h5' 2>&1 || true
echo SPLASH-HASH-END
