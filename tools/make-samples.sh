#!/usr/bin/env bash
# Regenerates the sample audio in samples/ (16 kHz mono, a few seconds each).
#
# Deterministic: every signal is an ffmpeg `aevalsrc` expression (its random() is a
# fixed-seed generator) and every output is written with -bitexact and without metadata,
# so the same ffmpeg build gives the same bytes. CI does not run this script: the files
# are committed. Needs ffmpeg with libmp3lame and libvorbis (Debian's ffmpeg has both).
#
# What the emulator's stand-in tag rule finds in each file is listed in samples/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
out=samples
mkdir -p "$out"

ff() { ffmpeg -hide_banner -loglevel error -nostdin -y "$@"; }
common=(-map_metadata -1 -fflags +bitexact -flags:a +bitexact -ac 1 -ar 16000)

# 4 s of a 1 kHz sine at -6 dBFS (peak 0.5), 16-bit little-endian PCM in WAV.
ff -f lavfi -i "aevalsrc=0.5*sin(2*PI*1000*t):s=16000:d=4" \
   "${common[@]}" -c:a pcm_s16le "$out/tone-1khz.wav"

# 5 s "street": 1.5 s silence, 2 s 1 kHz sine at -6 dBFS, 1.5 s white noise at -12 dBFS
# (uniform, peak 0.25); MP3 at 48 kbit/s (with the LAME header, so decoders trim the
# encoder delay and the length stays 5 s).
ff -f lavfi \
   -i "aevalsrc=if(lt(t\,1.5)\,0\,if(lt(t\,3.5)\,0.5*sin(2*PI*1000*t)\,0.25*(2*random(0)-1))):s=16000:d=5" \
   "${common[@]}" -c:a libmp3lame -b:a 48k "$out/street.mp3"

# 4 s of silence with a 20 ms burst of white noise (peak 0.5) every second from 0.5 s;
# Ogg Vorbis.
ff -f lavfi \
   -i "aevalsrc=if(gte(t\,0.5)*lt(mod(t-0.5\,1)\,0.02)\,0.5*(2*random(0)-1)\,0):s=16000:d=4" \
   "${common[@]}" -c:a libvorbis -q:a 2 "$out/knocks.ogg"

# 3 s of a 440 Hz sine at -6 dBFS as headerless s16le PCM:
# audio/x-raw; rate=16000; format=s16le; channels=1
ff -f lavfi -i "aevalsrc=0.5*sin(2*PI*440*t):s=16000:d=3" \
   "${common[@]}" -f s16le -c:a pcm_s16le "$out/tone-440hz-s16le-16k-mono.pcm"

# 3 s of digital silence. Unsigned 8-bit WAV (silence is exactly 0x80): half the size of
# 16-bit, and it exercises another WAV sample format.
ff -f lavfi -i "aevalsrc=0:s=16000:d=3" \
   "${common[@]}" -c:a pcm_u8 "$out/silence.wav"

ls -l "$out"
