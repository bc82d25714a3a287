#!/bin/sh
# The demo, run in the guest by `make demo`.
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }
agent_cmd=/tests/keyagent-test-agent
[ -x /bin/keyagentd ] && agent_cmd=/bin/keyagentd

step "Load the module: it registers the key type 'keyagent' and hooks the request_key actor"
run insmod /lib/keyagent/keyagent.ko
dmesg | grep -E 'Key type keyagent|keyagent: loaded' | sed 's/^\[[^]]*\] /  kernel: /'

step "A new session keyring, and an agent for 'user' keys registered in it"
run keyctl new_session >/dev/null
if [ "$agent_cmd" = /bin/keyagentd ]; then
	cat >/tmp/keyagentd.conf <<'CONF'
create user * * builtin:instantiate "answered by keyagentd on %t/%d: %c"
CONF
	run cat /tmp/keyagentd.conf
	printf '$ keyagentd --type user --config /tmp/keyagentd.conf &\n'
	keyagentd --type user --config /tmp/keyagentd.conf >/tmp/agent.out 2>/tmp/agent.err &
else
	printf '$ keyagent-test-agent -t user -s 40 &\n'
	$agent_cmd -t user -s 40 >/tmp/agent.out &
fi
agent=$!
i=0
while [ ! -s /tmp/agent.out ] && [ $i -lt 50 ]; do sleep 0.2; i=$((i + 1)); done
agent_key=$(grep -o '[0-9][0-9]*' /tmp/agent.out | tail -n 1)
run keyctl show @s

step "Request a key nobody has: the kernel hands the construction to the agent"
printf '$ keyctl request2 user demo:agent "hello from the requester" @s\n'
key=$(keyctl request2 user demo:agent "hello from the requester" @s)
echo "$key"
run keyctl print "$key"
[ -s /tmp/agent.err ] && sed 's/^/  agent log: /' /tmp/agent.err

step "/proc/keys: the agent key (pid, signal, requests sent) and the constructed key"
grep -E "^($(printf %08x "$agent_key")|$(printf %08x "$key")) " /proc/keys

step "Stop the agent and ask again: /sbin/request-key answers, as without the module"
run kill $agent
wait $agent 2>/dev/null
printf '$ keyctl request2 user demo:fallback "hello again" @s\n'
key2=$(keyctl request2 user demo:fallback "hello again" @s)
run keyctl print "$key2"
echo "(the test line in /etc/request-key.d instantiates with \"request-key:<callout>\")"

step "Counters in /sys/kernel/debug/keyagent/"
for f in routed answered fallback dead_agents; do
	printf '  %-12s %s\n' "$f" "$(cat /sys/kernel/debug/keyagent/$f)"
done

step "Unload"
run rmmod keyagent
