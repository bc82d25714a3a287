#!/bin/sh
# The benchmark job, run in the guest (busybox sh) by scripts/bench.sh, in one
# boot of the release kernel. Results are printed as "BENCH-" lines on the
# console, for bench/report.py on the host.
#
# Sizes come from the environment (scripts/bench.sh sets them):
#   BENCH_SAMPLES      latency samples per path                  (2000)
#   BENCH_RK_SAMPLES   of which through /sbin/request-key         (2000)
#   BENCH_PIN_SAMPLES  latency samples of the pinned diagnosis    (1000)
#   BENCH_TPUT_MS      throughput window per run, agent paths     (2000)
#   BENCH_RK_TPUT_MS   throughput window per run, request-key     (6000)
#   BENCH_TPUT_REPS    runs of each path and concurrency level    (5)
#   BENCH_OVH_ROUNDS   loaded/unloaded rounds                     (20)
#   BENCH_MEMORY       constructions for the memory check         (100000)
#   BENCH_QUOTA        constructions for the quota check          (8000)
#   BENCH_PROFILE      1: also trace a few constructions of each path with
#                      function_graph (tracefs)                   (1)
: "${BENCH_SAMPLES:=2000}" "${BENCH_RK_SAMPLES:=2000}" "${BENCH_PIN_SAMPLES:=1000}"
: "${BENCH_TPUT_MS:=2000}" "${BENCH_RK_TPUT_MS:=6000}" "${BENCH_TPUT_REPS:=5}"
: "${BENCH_OVH_ROUNDS:=20}" "${BENCH_MEMORY:=100000}" "${BENCH_QUOTA:=8000}"
: "${BENCH_PROFILE:=1}"
B=/bench/keyagent-bench
status=0

step() {
	echo "== $* ($(cut -d' ' -f1 /proc/uptime) s since boot)"
}

echo "BENCH-META kernel $(uname -r)"
echo "BENCH-META guest-cpus $(grep -c ^processor /proc/cpuinfo)"
echo "BENCH-META guest-cpu $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-)"
echo "BENCH-META gc_delay $(cat /proc/sys/kernel/keys/gc_delay)"
echo "BENCH-META request-key-conf $(grep -h '^create' /etc/request-key.d/*.conf | tr -s ' \t' ' ' | tr '\n' ';')"
[ -x /bin/keyagentd ] || echo "BENCH-META pending keyagentd (not built)"
[ -r /proc/slabinfo ] || echo "BENCH-META no-slabinfo (the kernel needs CONFIG_SLUB_DEBUG)"

# Informational kernel messages (module loaded/unloaded...) would land in the
# middle of the job's lines on the console; warnings and worse still print.
printk_was=$(cut -f1 /proc/sys/kernel/printk)
echo 5 > /proc/sys/kernel/printk

insmod /lib/keyagent/keyagent.ko || { echo "insmod failed"; exit 1; }

# The module comes and goes here: no agent may be registered yet.
step "overhead on the no-agent path: request_key() of existing and negative keys"
$B overhead -r "$BENCH_OVH_ROUNDS" || status=1

step "upcall latency"
$B latency -n "$BENCH_SAMPLES" -N "$BENCH_RK_SAMPLES" || status=1

# Diagnosis: the same, with the requester and the answering process pinned to
# one vCPU, then to different vCPUs. Under TCG a wakeup across vCPUs costs
# the emulator far more than it costs hardware.
step "upcall latency, pinned: same vCPU, then different vCPUs"
$B latency -n "$BENCH_PIN_SAMPLES" -N 0 -p keyagentd,agent,channel,floor,chan-floor -P 0,0 -L @same-cpu || status=1
$B latency -n "$BENCH_PIN_SAMPLES" -N 0 -p keyagentd,agent,channel,floor,chan-floor -P 0,1 -L @cross-cpu || status=1

step "throughput"
$B throughput -t "$BENCH_TPUT_MS" -T "$BENCH_RK_TPUT_MS" -r "$BENCH_TPUT_REPS" || status=1
step "throughput with one requester, pinned: same vCPU, then different vCPUs"
$B throughput -t "$BENCH_TPUT_MS" -l 1 -r 3 -p keyagentd,agent,channel -P 0,0 -L @same-cpu || status=1
$B throughput -t "$BENCH_TPUT_MS" -l 1 -r 3 -p keyagentd,agent,channel -P 0,1 -L @cross-cpu || status=1

step "memory"
$B memory -n "$BENCH_MEMORY" || status=1
step "key quota of an unprivileged agent's user"
$B quota -n "$BENCH_QUOTA" || status=1

if [ "$BENCH_PROFILE" = 1 ]; then
	step "profile: function_graph traces of a few constructions"
	# the system calls of each path, the same across vCPUs, and the kernel's
	# side of one construction through an agent (the module's dispatch in the
	# hooked call_sbin_request_key, the agent's two keyctl calls)
	$B profile || status=1
fi

for f in /tmp/*.err; do
	[ -s "$f" ] || continue
	echo "== $f (agent's stderr, last lines)"
	tail -n 10 "$f"
done
rmmod keyagent || status=1
echo "$printk_was" > /proc/sys/kernel/printk
step "done"
echo "BENCH-DONE $status"
exit $status
