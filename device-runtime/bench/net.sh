#!/usr/bin/env bash
# Network install benchmark (issue 6) on a native static x86_64 musl build of romlib-device
# (the `device` profile). One game of SIZE MiB (default 512; half text-like, half random, as
# install.sh) and a revision of it (16 scattered 4 KiB edits) are built into one library,
# then installed:
# - from the library folder (the reference, measured in the same run),
# - over loopback from `romlib serve`, and from nginx (Debian's, started here with the
#   library folder as its root), over plain HTTP and over HTTPS (a private authority and a
#   server certificate made here with openssl; `--ca-file`);
# - from `python3 -m http.server`, which ignores byte ranges (a fresh install reads each
#   pack once into a scratch copy, an upgrade reads them as streams; the install's warning
#   states the bytes beyond the records needed), the first version, the revision fresh,
#   and the revision as an upgrade;
# and the revision is installed as an upgrade next to the first version, from nginx.
# It prints install throughput and its ratio to the local install, peak RSS, requests,
# and bytes downloaded over the game's size (fresh install and upgrade). One run per
# figure; nothing is asserted about time. Every installed file is compared with its input.
# Then memory against the chunk count: a game of MANY_MIB MiB (default SIZE) of random
# bytes built with --avg-chunk 1024 (about 1000 chunks per MiB: 4M chunks at
# MANY_MIB=4096), installed from `romlib serve` and installed again over itself (every
# chunk taken from the installed copy): seconds and peak RSS of each.
# Usage: bash device-runtime/bench/net.sh [SIZE_MIB]   (WORK=/tmp/romlib-netbench, LEVEL=4)
set -euo pipefail
cd "$(dirname "$0")/../.."
WORK=${WORK:-/tmp/romlib-netbench}
export ROMLIB_CONFIG_DIR="$WORK/config"  # keygen trusts its key here, not in your own store
MIB=${1:-512}
LEVEL=${LEVEL:-4}
[ -x /usr/bin/time ] && { [ -x /usr/sbin/nginx ] || command -v nginx >/dev/null; } && command -v openssl >/dev/null || {
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time nginx openssl >/dev/null; }
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
rustup target add x86_64-unknown-linux-musl >/dev/null
TGT=x86_64-unknown-linux-musl
cargo build -q --profile device -p romlib-device --target $TGT --bin romlib-device
# shellcheck source=bench/host-bins.sh
source bench/host-bins.sh
host_bins -p romlib-host -p romlib-tests --bins
TD=${CARGO_TARGET_DIR:-target}
DEV=$TD/$TGT/device/romlib-device
HOST=$TD/$HOST_DIR
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

in="$WORK/in-$MIB"; lib="$WORK/lib-$MIB"
if [ ! -d "$lib" ]; then
  rm -rf "$in"
  "$HOST/gen-corpus" --single "$MIB" "$in" >/dev/null 2>&1
  mkdir -p "$in/game-v2"
  cp "$in/game/disc.iso" "$in/game-v2/disc.iso"
  python3 - "$in/game-v2/disc.iso" <<'PY'
import os, sys
p = sys.argv[1]
n = os.path.getsize(p)
with open(p, "r+b") as f:
    for i in range(16):
        f.seek((n // 17) * (i + 1))
        f.write(bytes((i * 7 + j) % 256 for j in range(4096)))
PY
  "$HOST/romlib" keygen --secret-key "$WORK/k.sec" --public-key "$WORK/k.pub" >/dev/null 2>&1 || true
  "$HOST/romlib" build -i "$in" -o "$lib" --signing-key "$WORK/k.sec" -c "$LEVEL" -q
fi
"$HOST/romlib" trust add "$WORK/k.pub" >/dev/null  # also when the key was there already
size=$(stat -c %s "$in/game/disc.iso")
field() { grep "$1" "$2" | awk -F': ' '{print $2}'; }
secs() { awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }' <<<"$1"; }

# install NAME GAME DIR SOURCE...: one timed install; sets WALL, RSS_KIB, GOT, REQ.
install() {
  local name=$1 game=$2 dir=$3; shift 3
  sync
  /usr/bin/time -v "$DEV" install -g "$game" --install-dir "$dir" --trusted-key "$WORK/k.pub" "$@" \
    >"$WORK/$name.out" 2>"$WORK/$name.time"
  cmp -s "$in/$game/disc.iso" "$dir/$game/disc.iso" || { echo "net.sh: $name: installed file differs" >&2; exit 1; }
  WALL=$(secs "$(field 'Elapsed (wall clock)' "$WORK/$name.time")")
  RSS_KIB=$(field 'Maximum resident set size' "$WORK/$name.time")
  EXTRA=$(sed -n 's/.*from their start: \([0-9]*\) bytes.*/\1/p' "$WORK/$name.time")
  GOT=$(sed -n 's/^downloaded \([0-9]*\) bytes in \([0-9]*\) request.*/\1/p' "$WORK/$name.out")
  REQ=$(sed -n 's/^downloaded \([0-9]*\) bytes in \([0-9]*\) request.*/\2/p' "$WORK/$name.out")
}

# romlib serve on a free port.
"$HOST/romlib" serve -r "$lib" --listen 127.0.0.1:0 >"$WORK/serve.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do grep -q 'http://' "$WORK/serve.log" && break; sleep 0.1; done
SPORT=$(grep -o '127.0.0.1:[0-9]*' "$WORK/serve.log" | head -1 | cut -d: -f2)
# nginx on another free port.
freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
NPORT=$(freeport); TPORT=$(freeport); PPORT=$(freeport)
# A private authority and a certificate for 127.0.0.1 (ECDSA P-256, as most CDNs now serve).
(cd "$WORK" && openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 30 \
   -subj /CN=romlib-bench-ca -addext basicConstraints=critical,CA:TRUE \
   -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null &&
 openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout srv.key -out srv.csr \
   -subj /CN=127.0.0.1 2>/dev/null &&
 printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >srv.ext &&
 openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out srv.pem -days 30 \
   -extfile srv.ext 2>/dev/null)
mkdir -p "$WORK/nginx/logs" "$WORK/nginx/tmp"
cat >"$WORK/nginx/nginx.conf" <<EOF
worker_processes 1;
error_log $WORK/nginx/logs/error.log;
pid $WORK/nginx/nginx.pid;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path $WORK/nginx/tmp;
  proxy_temp_path $WORK/nginx/tmp;
  fastcgi_temp_path $WORK/nginx/tmp;
  uwsgi_temp_path $WORK/nginx/tmp;
  scgi_temp_path $WORK/nginx/tmp;
  server { listen 127.0.0.1:$NPORT; root $lib; }
  server { listen 127.0.0.1:$TPORT ssl; ssl_certificate $WORK/srv.pem;
           ssl_certificate_key $WORK/srv.key; root $lib; }
}
EOF
"$NGINX" -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -g 'daemon off; master_process off;' &
pids+=($!)
(cd "$lib" && exec python3 -m http.server --bind 127.0.0.1 "$PPORT" >/dev/null 2>&1) &
pids+=($!)
for port in $NPORT $TPORT $PPORT; do
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
done

echo "## romlib-device install over HTTP: one $MIB MiB game"
echo
echo "$(date -u +%F), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores; native static x86_64 musl, \`device\` profile, loopback. One run per figure."
echo
echo "| install | seconds | MiB/s | vs local | peak RSS MiB | requests | downloaded / game size | beyond the records (no ranges) |"
echo "|---|---|---|---|---|---|---|---|"
rm -rf "$WORK/i-local"
install local game "$WORK/i-local" -r "$lib"
LW=$WALL
row() {  # LABEL
  awk -v l="$1" -v w="$WALL" -v lw="$LW" -v s="$size" -v r="$RSS_KIB" -v q="${REQ:--}" -v g="${GOT:-}" -v x="${EXTRA:-0}" 'BEGIN {
    w = (w > 0.005 ? w : 0.005); lw = (lw > 0.005 ? lw : 0.005);
    d = (g == "" ? "-" : sprintf("%.4f", g / s));
    printf "| %s | %.2f | %.1f | %.2fx | %.2f | %s | %s | %d |\n", l, w, s / 1048576 / w, lw / w, r / 1024, q, d, x }'
}
row "from the library folder (reference)"
rm -rf "$WORK/i-serve"
install serve game "$WORK/i-serve" --from "http://localhost:$SPORT/"
row "from \`romlib serve\` (http://localhost)"
rm -rf "$WORK/i-nginx"
install nginx game "$WORK/i-nginx" --from "http://127.0.0.1:$NPORT/"
row "from nginx"
rm -rf "$WORK/i-tls"
install tls game "$WORK/i-tls" --from "https://127.0.0.1:$TPORT/" --ca-file "$WORK/ca.pem"
row "from nginx over HTTPS (private CA)"
rm -rf "$WORK/i-py"
install py game "$WORK/i-py" --from "http://127.0.0.1:$PPORT/"
row "from \`python3 -m http.server\` (no ranges)"
install pyup game-v2 "$WORK/i-py" --from "http://127.0.0.1:$PPORT/"
row "upgrade to the revision, from \`python3 -m http.server\`"
rm -rf "$WORK/i-py2"
install py2 game-v2 "$WORK/i-py2" --from "http://127.0.0.1:$PPORT/"
row "the revision fresh, from \`python3 -m http.server\`"
install upgrade game-v2 "$WORK/i-nginx" --from "http://127.0.0.1:$NPORT/"
row "upgrade to the revision, from nginx"
echo
echo "The revision differs from the first version in 16 scattered 4 KiB blocks; the upgrade"
echo "reuses the installed version's chunks (hashed before use) and downloads the rest. Without"
echo "ranges, an install reads what it lacks of each pack once, forward, into a scratch copy on"
echo "the card: the server sends each pack from its start, so an upgrade still downloads the pack"
echo "up to its last changed record (here all of the first version's records before them)."
rm -rf "$WORK/i-local" "$WORK/i-serve" "$WORK/i-nginx" "$WORK/i-tls" "$WORK/i-py" "$WORK/i-py2"

MANY=${MANY_MIB:-$MIB}
min="$WORK/many-in-$MANY"; mlib="$WORK/many-lib-$MANY"
if [ ! -d "$mlib" ]; then
  rm -rf "$min"; mkdir -p "$min/many"
  head -c $((MANY << 20)) /dev/urandom >"$min/many/disc.iso"
  "$HOST/romlib" build -i "$min" -o "$mlib" --signing-key "$WORK/k.sec" --avg-chunk 1024 \
    --no-dat-hashes -q
fi
"$HOST/romlib" serve -r "$mlib" --listen 127.0.0.1:0 >"$WORK/serve-many.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do grep -q 'http://' "$WORK/serve-many.log" && break; sleep 0.1; done
MPORT=$(grep -o '127.0.0.1:[0-9]*' "$WORK/serve-many.log" | head -1 | cut -d: -f2)
body_len=$(od -An -tu4 -j12 -N4 "$mlib/games/many.manifest" | tr -d ' ')
chunks=$(( ($(stat -c %s "$mlib/games/many.manifest") - 112 - body_len) / 36 ))
in=$min
echo
echo "### Memory against the chunk count: $MANY MiB at --avg-chunk 1024, $chunks chunks, from \`romlib serve\`"
echo
echo "| install | seconds | peak RSS MiB | downloaded |"
echo "|---|---|---|---|"
rm -rf "$WORK/i-many"
for what in fresh "again over the installed copy"; do
  install many many "$WORK/i-many" --from "http://127.0.0.1:$MPORT/"
  awk -v l="$what" -v w="$WALL" -v r="$RSS_KIB" -v g="$GOT" 'BEGIN { printf "| %s | %.2f | %.2f | %s |\n", l, w, r / 1024, g }'
done
echo
echo "What the device already holds is indexed a window of 131072 chunks at a time, so memory"
echo "does not grow with the chunk count; each further window scans the installed copy's"
echo "chunk table again (36 bytes per chunk)."
rm -rf "$WORK/i-many"
