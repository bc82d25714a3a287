#!/bin/sh
# keyctl end to end: an agent answers `keyctl request2`; without an agent,
# /sbin/request-key answers exactly as with the module unloaded.
cd "$(dirname "$0")" && . ./ktap.sh
ktap_header 4
MODULE=/lib/keyagent/keyagent.ko
ensure_module

keyctl new_session >/dev/null
./keyagent-test-agent -t user -s 40 >/tmp/keyctl-agent.out &
agent=$!
wait_until [ -s /tmp/keyctl-agent.out ]
agent_key=$(cat /tmp/keyctl-agent.out)

key=$(keyctl request2 user keyctl-happy hello @s)
ktap_check "request2_answered_by_agent" [ "$(keyctl print "$key")" = "agent:hello" ]

# The reaper gives the construction's pending slot back after the answer.
agent_line() {
	line=$(grep "^$(printf %08x "$agent_key") " /proc/keys)
	case $line in *" pending 0"*) return 0 ;; esac
	return 1
}
wait_until agent_line
echo "# $line"
case $line in
*"keyagent  user: pid $agent sig 40 alive sent 1 pending 0"*) ktap_pass "proc_keys_shows_agent" ;;
*) ktap_fail "proc_keys_shows_agent" ;;
esac
kill $agent
wait $agent 2>/dev/null

# The same request with no agent, loaded and unloaded: identical answers.
keyctl new_session >/dev/null
loaded=$(keyctl print "$(keyctl request2 user keyctl-fallback-1 cb @s)")
rmmod keyagent
unloaded=$(keyctl print "$(keyctl request2 user keyctl-fallback-2 cb @s)")
insmod $MODULE
echo "# loaded: $loaded; unloaded: $unloaded"
ktap_check "fallback_answer_is_request_key" [ "$loaded" = "request-key:cb" ]
ktap_check "fallback_same_as_unloaded" [ "$loaded" = "$unloaded" ]
ktap_finish
