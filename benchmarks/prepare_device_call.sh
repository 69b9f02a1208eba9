#!/usr/bin/env bash
# Everything benchmarks/device_session.sh needs on a lent GPU machine, within one call's
# 64 MiB carry: the wheels the GPU image lacks, then the real-audio bundle in what is left.
#
#   bash benchmarks/prepare_device_call.sh        # from the project root, after the README's setup
#                                                 # and experiments/real_audio.py's data
# Three things the shared wheel script gets wrong for this project, each of which cost a
# failed device call (2026-11-26, H100):
# - it carries PyPI's `argparse` 1.4 (a dependency of a dependency), which shadows the
#   standard library's: pytest and every command line break ("unexpected keyword
#   argument 'allow_abbrev'" / "'required'");
# - it finds what importing the package pulls in, and `pywt` is imported only when a
#   config uses the wavelet pretransform (the demo and real-audio configs do);
# - transformers 5.17 (the image's) imports `soxr` once librosa is present.
set -euo pipefail
py=${1:-.venv-current/bin/python}
rm -rf .whl
bash ../shared/device/make_wheels.sh "$py"
rm -f .whl/argparse-*.whl
for spec in "PyWavelets==$("$py" -c 'import pywt; print(pywt.__version__)')" soxr; do
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d .whl "$spec" 2>&1 | grep -v "^WARNING" || true
done
# stable-audio-tools 0.0.20 for the FSDP check, apart from the wheels the session installs first
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.10 -d .whl/sat020 \
  stable-audio-tools==0.0.20
wheels=$(du -cb .whl | tail -1 | cut -f1)
budget=$(python3 -c "print(round((64 * 2**20 - $wheels) / 2**20 - 1.5, 1))")
echo ".whl: $(ls .whl | wc -l) wheels, $((wheels / 1024 / 1024)) MiB; bundle budget ${budget} MiB"
.venv/bin/python experiments/real_audio_bundle.py pack --budget-mb "$budget"
echo "carry: $(du -cb .whl data/real_bundle | tail -1 | cut -f1) bytes of $((64 * 1024 * 1024))"
