#!/bin/sh
# rmmod with constructions pending: every requester is released with
# ECANCELED, the agent keys go dead, and the module loads again.
cd "$(dirname "$0")" && . ./ktap.sh
ktap_header 4
MODULE=/lib/keyagent/keyagent.ko
ensure_module

keyctl new_session >/dev/null
./keyagent-test-agent -i >/tmp/rmmod-agent.out &
agent=$!
for i in 1 2 3 4 5 6 7 8 9 10; do [ -s /tmp/rmmod-agent.out ] && break; sleep 1; done
agent_key=$(cat /tmp/rmmod-agent.out)

base=$(cat /sys/kernel/debug/keyagent/routed)
pids=
for i in 1 2 3; do
	keyctl request2 user "rmmod-$i" x @s >/tmp/rmmod-req-$i.out 2>&1 &
	pids="$pids $!"
done
for i in $(seq 1 100); do
	[ "$(cat /sys/kernel/debug/keyagent/routed)" -ge $((base + 3)) ] && break
	sleep 0.1
done
echo "# routed before rmmod: $(( $(cat /sys/kernel/debug/keyagent/routed) - base ))"

ktap_check "rmmod_with_pending" rmmod keyagent
released=1
for p in $pids; do wait "$p" || true; done
for i in 1 2 3; do
	grep -q "Operation canceled" /tmp/rmmod-req-$i.out || { released=0; cat /tmp/rmmod-req-$i.out; }
done
[ $released = 1 ] && ktap_pass "requesters_get_ECANCELED" || ktap_fail "requesters_get_ECANCELED"

out=$(keyctl print "$agent_key" 2>&1)
echo "# agent key after rmmod: $out"
case $out in
*"Key has been revoked"*|*"Required key not available"*|*"Key has expired"*) ktap_pass "agent_key_dead" ;;
*) ktap_fail "agent_key_dead" ;;
esac
kill $agent 2>/dev/null
wait $agent 2>/dev/null
ktap_check "reload" insmod $MODULE
ktap_finish
