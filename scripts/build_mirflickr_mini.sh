#!/usr/bin/env bash
# Rebuild the bundled demo dataset gcnretrieval/bundled/mirflickr_mini/ from the real
# MIRFlickr-25K photos, tags and labels (an offline build step; the package itself never
# reads the source folder).
#
#   scripts/build_mirflickr_mini.sh [SOURCE]
#
# SOURCE (default ../shared/data/mirflickr25k) holds the cleaned 20,015-pair annotation
# files (all_imgs.txt, all_tags.txt, all_labels.txt, TagList1386.txt) and thumbs/ with
# the photos im1.jpg ... im1000.jpg, 730 of which belong to the cleaned set.
set -euo pipefail
cd "$(dirname "$0")/.."
SOURCE="${1:-../shared/data/mirflickr25k}"
OUT=gcnretrieval/bundled/mirflickr_mini
ATTRIBUTION="$(cat "$OUT/ATTRIBUTION.md" 2>/dev/null || true)"

gcnretrieval prepare mirflickr \
    --annotations "$SOURCE" \
    --images "$SOURCE/thumbs" \
    --available-only \
    --features efficientnet-lite0 \
    --num-test 150 \
    --seed 0 \
    --thumbnails 96 \
    --name mirflickr-mini \
    --out "$OUT" \
    --overwrite

# prepare replaces the folder: put the attribution back
if [ -n "$ATTRIBUTION" ]; then
    printf '%s\n' "$ATTRIBUTION" > "$OUT/ATTRIBUTION.md"
fi
du -sh "$OUT"
