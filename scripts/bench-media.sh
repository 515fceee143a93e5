#!/usr/bin/env bash
# The host's media path against ffmpeg in the same run (issue 7): decode +
# downmix + resample to 16 kHz mono, one thread each, on generated 10-minute
# recordings (espeak-ng speech looped with sox): MP3 44.1 kHz stereo, WAV 8 kHz
# mono (telephony) and WAV 44.1 kHz stereo. Best of 5 for both tools, reported as
# multiples of real time and as the ratio ffmpeg/host. Then the whole chunking
# path (loudness pass + silence rule + 16 kHz WAV chunks) on a 2-hour MP3, with
# the peak resident memory.
# Needs sox, espeak-ng and ffmpeg (`cargo xtask test` installs them).
# Usage: scripts/bench-media.sh
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --release -q -p conserver-media --example media_bench
BENCH="$TARGET/release/examples/media_bench"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

espeak-ng -w "$WORK/speech.wav" "Thank you for calling the billing department. Your call may be recorded for quality \
and training purposes. Please hold while we connect you to the next available agent. We appreciate your patience."
sox "$WORK/speech.wav" "$WORK/pause.wav" pad 0 2 2>/dev/null
sox "$WORK/pause.wav" -r 44100 -c 2 "$WORK/unit44.wav"
secs=$(soxi -D "$WORK/unit44.wav")
repeats=$(python3 -c "import math; print(math.ceil(600 / $secs) - 1)")
sox "$WORK/unit44.wav" "$WORK/ten44.wav" repeat "$repeats" trim 0 600
ffmpeg -v error -y -i "$WORK/ten44.wav" -c:a libmp3lame -b:a 128k "$WORK/call.mp3"
sox "$WORK/ten44.wav" -r 8000 -c 1 "$WORK/call8k.wav"
cp "$WORK/ten44.wav" "$WORK/call44.wav"

best_ffmpeg() { # file → best wall seconds of 5
  python3 - "$1" <<'PY'
import subprocess, sys, time
best = 1e9
for _ in range(5):
    t = time.perf_counter()
    subprocess.run(["ffmpeg", "-v", "error", "-threads", "1", "-i", sys.argv[1], "-ac", "1", "-ar", "16000",
                    "-f", "s16le", "-y", "/dev/null"], check=True)
    best = min(best, time.perf_counter() - t)
print(f"{best:.4f}")
PY
}

printf '%-22s %10s %14s %14s %16s\n' input audio_s host_xRT ffmpeg_xRT host_speed_vs_ff
for f in call.mp3 call8k.wav call44.wav; do
  line=$("$BENCH" decode "$WORK/$f" 5)
  audio=$(sed -E 's/.*audio_secs=([0-9.]+).*/\1/' <<<"$line")
  host=$(sed -E 's/.*best_wall_secs=([0-9.]+).*/\1/' <<<"$line")
  ff=$(best_ffmpeg "$WORK/$f")
  python3 -c "a=$audio; h=$host; f=$ff; print(f'{\"$f\":<22} {a:>10.0f} {a/h:>14.0f} {a/f:>14.0f} {f/h:>16.2f}')"
done

echo
echo "2-hour MP3 (16 kHz mono, 32 kbit/s), chunked at silences into 480 s WAV chunks:"
sox "$WORK/pause.wav" -r 16000 -c 1 "$WORK/unit16.wav"
secs=$(soxi -D "$WORK/unit16.wav")
repeats=$(python3 -c "import math; print(math.ceil(7200 / $secs) - 1)")
sox "$WORK/unit16.wav" "$WORK/two_hours.wav" repeat "$repeats" trim 0 7200
ffmpeg -v error -y -i "$WORK/two_hours.wav" -c:a libmp3lame -b:a 32k "$WORK/two_hours.mp3"
rm "$WORK/two_hours.wav"
"$BENCH" chunk "$WORK/two_hours.mp3" 480
