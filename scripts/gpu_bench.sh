#!/usr/bin/env bash
# GPU throughput of every bundled network: `reidscope bench` on the machine's wgpu adapter in
# f32 and f16 (where the adapter has SHADER_F16), batch 1, 8, 32 and 64, written as a markdown
# table (images/s, and f16 over f32).
#
# Usage: scripts/gpu_bench.sh [OUT.md]        (default OUT: gpu_bench.md)
# Environment: REIDSCOPE (the binary; default target/release/reidscope), MODELS (space-separated
# names; default all eight), BATCHES (default 1,8,32,64), SECONDS_PER (measuring time per
# configuration after warm-up; default 5), HEIGHT / WIDTH (default 256 × 128).
set -euo pipefail
cd "$(dirname "$0")/.."

bin=${REIDSCOPE:-target/release/reidscope}
if [ ! -x "$bin" ]; then
  echo "no reidscope binary at $bin: run cargo build --release, or set REIDSCOPE" >&2
  exit 1
fi
out=${1:-gpu_bench.md}
header="GPU throughput, images/s: \`reidscope bench\`"
if [ -e "$out" ] && [ "$(head -c ${#header} "$out")" != "$header" ]; then
  echo "$out exists and is not a table this script wrote: give another name" >&2
  exit 1
fi
models=${MODELS:-osnet_x0_25 osnet_x0_5 osnet_x0_75 osnet_x1_0 osnet_ibn_x1_0 osnet_ain_x1_0 resnet50 mobilenetv2_x1_0}
batches=${BATCHES:-1,8,32,64}
seconds=${SECONDS_PER:-5}
height=${HEIGHT:-256}
width=${WIDTH:-128}

adapter=$("$bin" devices 2>/dev/null | sed -n 's/^gpu: //p' | head -n 1)
if [ -z "$adapter" ]; then
  echo "no wgpu adapter found (reidscope devices lists none)" >&2
  exit 1
fi
precisions=f32
case "$adapter" in *"f16=yes"*) precisions=f32,f16 ;; esac

lines=$(mktemp)
trap 'rm -f "$lines"' EXIT
for model in $models; do
  echo "measuring $model ($precisions, batch $batches) ..." >&2
  "$bin" bench --model "$model" --device gpu --precision "$precisions" --batch "$batches" \
    --height "$height" --width "$width" --seconds "$seconds" | grep '^model=' >> "$lines"
done

table=$(mktemp "$(dirname "$out")/.gpu_bench.XXXXXX")
{
  echo "${header}, ${height}×${width}, random weights, ${seconds} s per configuration."
  echo "Adapter: ${adapter}. Measured $(date -u +%Y-%m-%d)."
  echo
  echo "| model | batch | f32 | f16 | f16 / f32 |"
  echo "|---|---|---|---|---|"
  awk '
    {
      for (i = 1; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
      key = f["model"] SUBSEP f["batch"]
      if (!(key in seen)) { seen[key] = 1; order[++n] = key }
      rate[key, f["precision"]] = f["images_per_s"]
    }
    END {
      for (i = 1; i <= n; i++) {
        split(order[i], mb, SUBSEP)
        a = rate[order[i], "f32"]; b = rate[order[i], "f16"]
        ratio = (a > 0 && b > 0) ? sprintf("%.2f", b / a) : "n/a"
        printf "| %s | %s | %s | %s | %s |\n", mb[1], mb[2], a, (b == "" ? "n/a" : b), ratio
      }
    }' "$lines"
} > "$table"
mv "$table" "$out"
cat "$out"
