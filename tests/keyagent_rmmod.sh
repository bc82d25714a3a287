#!/bin/sh
# rmmod with constructions pending: every requester is released with
# ECANCELED, the agent keys go dead, and the module loads again.
cd "$(dirname "$0")" && . ./ktap.sh
ktap_header 4
MODULE=/lib/keyagent/keyagent.ko
ensure_module

# The constructions must end by the unload, long before their timeout.
echo 3600 >/sys/module/keyagent/parameters/request_timeout
keyctl new_session >/dev/null
./keyagent-test-agent -i >/tmp/rmmod-agent.out &
agent=$!
wait_until [ -s /tmp/rmmod-agent.out ]
agent_key=$(cat /tmp/rmmod-agent.out)

base=$(cat /sys/kernel/debug/keyagent/routed)
pids=
for i in 1 2 3; do
	keyctl request2 user "rmmod-$i" x @s >/tmp/rmmod-req-$i.out 2>&1 &
	pids="$pids $!"
done
routed_all() { [ "$(cat /sys/kernel/debug/keyagent/routed)" -ge $((base + 3)) ]; }
wait_until routed_all
echo "# routed before rmmod: $(( $(cat /sys/kernel/debug/keyagent/routed) - base ))"

if rmmod_retrying; then
	ktap_pass "rmmod_with_pending"
else
	ktap_fail "rmmod_with_pending"
	kill $agent	# releases the requesters (EOWNERDEAD)
fi
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
