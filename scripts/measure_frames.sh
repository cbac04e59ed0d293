#!/usr/bin/env bash
# Frame times of the app under a virtual X display (`reidscope gui --measure-frames`):
#  1. the bundled demo with the bundled model, opened twice: the second opening reads the
#     cached features, so its `first_ranked_list_s` is the time to a ranked list of a cached run;
#  2. a 20k-image gallery (generated once with `demo-data`, colour-histogram features): the
#     gallery grid scrolled and jumped through, queries switched every frame, the embedding
#     view (PCA of all 26k points) panned and zoomed every frame.
# Writes OUT_DIR/demo-cached.json and OUT_DIR/gallery-20k.json.
# Usage: scripts/measure_frames.sh [OUT_DIR] [DATASET_DIR]
# Needs xvfb and a Vulkan driver (apt-get install -y xvfb mesa-vulkan-drivers) or a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-frames}
data=${2:-${TMPDIR:-/tmp}/reidscope-20k}
mkdir -p "$out"
cargo build --release --locked
bin=(cargo run --release --locked --)
display=(xvfb-run -a -s "-screen 0 1600x1000x24")
"${display[@]}" "${bin[@]}" gui --measure-frames "$out/demo-first.json"
"${display[@]}" "${bin[@]}" gui --measure-frames "$out/demo-cached.json"
if [ ! -d "$data/bounding_box_test" ]; then
    # 1000 identities and 12000 distractors: about 20k gallery images.
    "${bin[@]}" demo-data --out "$data" --seed 20000 --test-identities 1000 --distractors 12000
fi
"${display[@]}" "${bin[@]}" gui --root "$data" --baseline --measure-frames "$out/gallery-20k.json"
