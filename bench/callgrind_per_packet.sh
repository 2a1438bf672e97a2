#!/usr/bin/env bash
# usage: bench/callgrind_per_packet.sh PCAP PROTO PORTS [PACKETS] [BASE]  (run from the repository root; $PY or .venv/bin/python)
# instructions per packet = (Ir(PACKETS) - Ir(BASE)) / (PACKETS - BASE) over bench/bench_proto.py, hash seed fixed
set -e
PY=${PY:-$PWD/.venv/bin/python}
P=$1; PROTO=$2; PORTS=$3; N=${4:-20000}; B=${5:-2000}
args=(--proto "$PROTO"); [ -n "$PORTS" ] && args+=(--ports "$PORTS")
ir() { PYTHONHASHSEED=0 PYTHONPATH=$PWD valgrind --tool=callgrind --dump-instr=no --callgrind-out-file=/dev/null "$PY" bench/bench_proto.py "$P" "${args[@]}" --packets "$1" --repeat 1 2>&1 >/dev/null | awk '/Collected/ {print $4}'; }
a=$(ir "$B"); b=$(ir "$N")
python3 -c "print('%.0f instructions/packet (%s %s, %d-%d packets)' % (($b-$a)/($N-$B), '$P', '$PROTO', $B, $N))"
