#!/usr/bin/env bash
# Regenerates the dsp encoder's calibration constants (src/model/dsp_calibration.inc): the mean and
# standard deviation of every raw descriptor over the frames with sound of the DEVELOPMENT corpus (the
# Beginner Course pieces that scripts/corpus renders; never the Booster Music evaluation corpus). The
# constants in the tree come from the 7-variant rendering (56 files), which this script makes when the
# corpus is missing.
# Usage: bench/dsp_calibrate.sh [CORPUS=bench-data/corpus/beginner]
set -euo pipefail
cd "$(dirname "$0")/.."
corpus=${1:-bench-data/corpus/beginner}
[[ -f $corpus/labels.json ]] || scripts/corpus "$(dirname "$corpus")" 7 >/dev/null
scripts/build release dsp_calibrate >/dev/null
build/bench/dsp_calibrate "$corpus"/audio/*.wav > src/model/dsp_calibration.inc.tmp
mv src/model/dsp_calibration.inc.tmp src/model/dsp_calibration.inc
head -1 src/model/dsp_calibration.inc
