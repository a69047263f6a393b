#!/bin/sh
# The diarization models exported to ONNX (export_diarization.py) into OUT_DIR, in an environment of their
# own at ENV_DIR: the lock's `export` group, hashes checked, and PyTorch's CPU build alone (from PyTorch's
# CPU index, or where pip's own configuration finds the wheel locally). Never CUDA wheels, never the worker's
# environment. Skips the work when OUT_DIR already holds this export (its stamp: the inputs' sha256).
#   worker/transcription/export_diarization.sh PYTHON ENV_DIR OUT_DIR
# Used by `make model` and by the transcription image's build stage.
set -eu
[ $# -eq 3 ] || { echo "usage: $0 PYTHON ENV_DIR OUT_DIR" >&2; exit 2; }
python=$1 env=$2 out=$3
here=$(cd "$(dirname "$0")" && pwd)
requirements=$here/../../requirements/export.txt
# PyTorch's CPU build, exactly (the local version label +cpu: never PyPI's CUDA build, ~4 GB with its wheels).
torch="torch==2.13.0+cpu"
stamp=$(cat "$requirements" "$here/export_diarization.py" | sha256sum | cut -d' ' -f1)
# ENV_DIR kept (make model's): the torch-vs-ONNX test runs torch there.
if [ "$(cat "$out/.exported" 2>/dev/null)" = "$stamp" ] && [ -x "$env/bin/python" ]; then
  exit 0
fi
echo "exporting the diarization models to ONNX in $out (once; its own environment: $env)"
[ -x "$env/bin/python" ] || "$python" -m venv "$env"
pip="$env/bin/python -m pip install -q --disable-pip-version-check"
$pip --require-hashes --no-deps -r "$requirements"
$pip --no-deps --index-url "${TORCH_INDEX:-https://download.pytorch.org/whl/cpu}" "$torch"
"$env/bin/python" -m pip check
"$env/bin/python" -I "$here/export_diarization.py" "$out"
echo "$stamp" > "$out/.exported"
