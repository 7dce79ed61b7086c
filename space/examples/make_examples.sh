#!/usr/bin/env bash
# Rebuilds the three example clips (16 kHz mono Ogg Vorbis, peak -1 dBFS) from Debian packages:
# fillets-ng-data-cs (real Czech dialogue, GPL-2) and espeak-ng (Czech TTS of the same sentence).
set -euo pipefail
cd "$(dirname "$0")"
SOUND=/usr/share/games/fillets-ng/sound
SENTENCE="Ještě, že už tu nejsou kuchaři. Ještě by nás mohli chtít uvařit."  # the line the actor speaks
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sox "$SOUND/kitchen/cs/kuch-m-kuchari.ogg" -r 16000 -c 1 "$tmp/real.wav" gain -n -1
espeak-ng -v cs -w "$tmp/tts_raw.wav" "$SENTENCE"
sox "$tmp/tts_raw.wav" -r 16000 -c 1 "$tmp/tts.wav" gain -n -1
sox "$tmp/real.wav" bonafide_fillets_cs.ogg
sox "$tmp/tts.wav" spoof_espeak_cs.ogg
sox "$tmp/real.wav" "$tmp/tts.wav" mixed_real_then_espeak_cs.ogg
