#!/usr/bin/env bash
# Writes docs/screenshots/{queries,actmaps,browser,metrics,compare,drift,embedding}.png: the app on the bundled demo,
# under a virtual X display, walking through its views (`reidscope gui --screenshots DIR`).
# Needs xvfb and a Vulkan driver (apt-get install -y xvfb mesa-vulkan-drivers) or a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked
xvfb-run -a -s "-screen 0 1600x1000x24" \
    cargo run --release --locked -- gui --screenshots docs/screenshots
