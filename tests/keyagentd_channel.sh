#!/bin/sh
# keyagentd's channel delivery. With the default --delivery, a type whose
# lines are builtins and piped handlers is served through /dev/keyagent: its
# agent key says "chan" in /proc/keys, the daemon never assumes an authority,
# and bursts are answered too. A type with a line running a program that
# answers with keyctl stays with signals, as does every type with --delivery
# signal or when the daemon sees no /dev/keyagent; a reload moves a type from
# one to the other. SIGTERM fails what is pending with ECANCELED; a killed
# daemon's constructions, read or not, fail with EOWNERDEAD.
#
# Nothing depends on the machine's speed: waits are bounded at WAIT_S (60 s),
# handlers may run 500 s, the module waits 600 s for an answer.
cd "$(dirname "$0")" && . ./ktap.sh
KD=/bin/keyagentd
if [ ! -x $KD ]; then
	ktap_header 1
	ktap_skip "keyagentd_channel" "no $KD in this image"
	ktap_finish
fi
ensure_module
if [ ! -c /dev/keyagent ]; then
	ktap_header 1
	ktap_skip "keyagentd_channel" "the module offers no /dev/keyagent"
	ktap_finish
fi
ktap_header 37
timeout_param=/sys/module/keyagent/parameters/request_timeout
old_timeout=$(cat $timeout_param)
echo 600 >$timeout_param

dir=/tmp/kd-channel
rm -rf $dir
mkdir -p $dir

cat >$dir/handler <<'EOF'
#!/bin/sh
case $1 in
upper) tr a-z A-Z; exit 0 ;;
fail) echo "handler failing on purpose" >&2; exit 3 ;;
slow) echo $$ >>/tmp/kd-channel/slow.pids; exec sleep 600 ;;
keyctl) exec /bin/keyctl instantiate "$2" "keyctl:$3" 0 ;;
esac
exit 9
EOF
chmod +x $dir/handler

# Builtins and piped handlers only: the channel can serve all of it.
cat >$dir/chan.conf <<EOF
create	user	kd-b:*		*	builtin:instantiate "b:%c:%u"
create	user	kd-p:*		*	|$dir/handler upper
create	user	kd-pf:*		*	|$dir/handler fail
negate	user	kd-pf:*		*	builtin:negate 30
create	user	kd-pr:*		*	|$dir/handler fail
create	user	kd-slow:*	*	|$dir/handler slow
EOF
# The same and a program answering with keyctl: signals for the type.
cp $dir/chan.conf $dir/mixed.conf
printf 'create\tuser\tkd-k:*\t\t*\t%s keyctl %%k %%c\n' $dir/handler >>$dir/mixed.conf

# check NAME SHELL-CONDITION: like ktap_check, for a condition in one string.
check() {
	if sh -c "$2"; then ktap_pass "$1"; else ktap_fail "$1"; fi
}

# same NAME GOT EXPECTED: pass if GOT is EXPECTED.
same() {
	[ "$2" = "$3" ] || echo "# $1: got \"$2\", expected \"$3\""
	ktap_check "$1" [ "$2" = "$3" ]
}

# start_daemon NAME ARGS...: keyagentd serving user keys in this shell's
# session keyring; stdout in $dir/NAME.out, log in $dir/NAME.log. Sets
# $daemon and $agent_key.
start_daemon() {
	name=$1
	shift
	$KD -n -v --type user --handler-timeout 500 "$@" >$dir/$name.out 2>$dir/$name.log &
	daemon=$!
	wait_until test -s $dir/$name.out
	agent_key=$(awk '$1 == "user" { print $2 }' $dir/$name.out)
	echo "# $name: daemon $daemon, agent key $agent_key"
}

# stop_daemon: SIGTERM, and its exit status in $status.
stop_daemon() {
	kill -TERM $daemon
	wait $daemon
	status=$?
}

# agent_line SERIAL: the key's line in /proc/keys.
agent_line() {
	[ -n "$1" ] && grep "^$(printf %08x "$1") " /proc/keys
}

# delivered_by SERIAL WORDS: the agent key's /proc/keys line says WORDS
# ("chan" or "sig 40") and that the agent is alive.
delivered_by() {
	case "$(agent_line "$1")" in
	*" user: pid "*" $2 alive "*) return 0 ;;
	esac
	echo "# $(agent_line "$1")"
	return 1
}

# field SERIAL NAME: the number after NAME in the agent key's line.
field() {
	agent_line "$1" | sed -n "s/.* $2 \([0-9]*\).*/\1/p"
}

# pending_is SERIAL N: the agent has N constructions in flight.
pending_is() {
	[ "$(field "$1" pending)" = "$2" ]
}

# ask DESC CALLOUT: the payload of the user key DESC requested with CALLOUT,
# or the requester's error.
ask() {
	err=$dir/err.$(printf %s "$1" | tr -c 'A-Za-z0-9' _)
	if k=$(keyctl request2 user "$1" "$2" @s 2>$err); then
		keyctl print "$k"
	else
		sed 's/^[^:]*: //' $err
	fi
	rm -f $err
}

# kill_slow_handlers: the piped handlers a killed daemon left running.
kill_slow_handlers() {
	[ -f $dir/slow.pids ] && kill $(cat $dir/slow.pids) 2>/dev/null
	rm -f $dir/slow.pids
}

# --- The default delivery: the channel.
keyctl new_session >/dev/null
start_daemon chan -c $dir/chan.conf
ktap_check "agent_key_on_channel" delivered_by "$agent_key" chan
check "log_says_channel" "grep -q 'serving user (agent key $agent_key, channel /dev/keyagent)' $dir/chan.log"

same "builtin_instantiate" "$(ask kd-b:1 hello)" "b:hello:0"
same "piped_handler_stdout" "$(ask kd-p:1 abc)" "ABC"
same "piped_failure_runs_builtin_negate_line" "$(ask kd-pf:1 x)" "Required key not available"
same "piped_failure_without_negate_line" "$(ask kd-pr:1 x)" "Key was rejected by service"
same "no_line_ENOKEY" "$(ask kd-none:1 x)" "Required key not available"
# A request's log line may come just after its answer.
wait_until grep -q 'description="kd-pr:1".*no negate line' $dir/chan.log
wait_until grep -q 'description="kd-none:1"' $dir/chan.log
check "outcomes_logged" "grep -q 'description=\"kd-b:1\".*outcome=\"instantiated\"' $dir/chan.log &&
	grep -q 'description=\"kd-p:1\".*outcome=\"instantiated with 3 byte(s) from the handler.s stdout' $dir/chan.log &&
	grep -q 'description=\"kd-pf:1\".*running the negate line $dir/chan.conf:4' $dir/chan.log &&
	grep -q 'description=\"kd-none:1\".*handler=\"-\" outcome=\"no matching handler; rejected with ENOKEY' $dir/chan.log &&
	grep -q 'handler stderr: handler failing on purpose' $dir/chan.log"
# Read from the channel, never signalled (the signal path logs "%S").
check "every_request_read_from_channel" "[ \$(grep -c ': from the channel: callout' $dir/chan.log) -eq 5 ] &&
	! grep -q ', %S ' $dir/chan.log"
sent=$(field "$agent_key" sent)
echo "# agent key after 5 requests: $(agent_line "$agent_key")"
same "module_counted_5_sent" "$sent" 5

# A burst: the records of one read are answered together.
i=1 askers=
while [ $i -le 24 ]; do
	ask "kd-b:burst$i" "v$i" >$dir/burst.$i &
	askers="$askers $!"
	i=$((i + 1))
done
for pid in $askers; do wait $pid; done
ok=1
i=1
while [ $i -le 24 ]; do
	[ "$(cat $dir/burst.$i)" = "b:v$i:0" ] || { echo "# burst $i: $(cat $dir/burst.$i)"; ok=0; }
	i=$((i + 1))
done
ktap_check "burst_of_24_answered" [ $ok = 1 ]

# SIGTERM with a handler running and a record maybe not read yet (the daemon
# is stopped when it comes): both fail with ECANCELED.
rm -f $dir/slow.pids
ask kd-slow:1 x >$dir/term1.out &
r1=$!
wait_until test -s $dir/slow.pids
kill -STOP $daemon
ask kd-slow:2 x >$dir/term2.out &
r2=$!
wait_until pending_is "$agent_key" 2
kill -TERM $daemon
kill -CONT $daemon
wait $r1
wait $r2
same "sigterm_cancels_running_ECANCELED" "$(cat $dir/term1.out)" "Operation canceled"
same "sigterm_cancels_queued_ECANCELED" "$(cat $dir/term2.out)" "Operation canceled"
wait $daemon
status=$?
ktap_check "sigterm_exits_0" [ $status = 0 ]
check "agent_key_retired" "! keyctl describe $agent_key >/dev/null 2>&1"
rm -f $dir/slow.pids
under_construction=$(awk '$2 ~ /U/' /proc/keys)
[ -z "$under_construction" ] || echo "# $under_construction"
ktap_check "nothing_under_construction" [ -z "$under_construction" ]

# --- A killed daemon: the module fails its constructions with EOWNERDEAD,
# the one whose handler runs and the one not read yet.
keyctl new_session >/dev/null
start_daemon dead -c $dir/chan.conf
rm -f $dir/slow.pids
ask kd-slow:3 x >$dir/dead1.out &
r1=$!
wait_until test -s $dir/slow.pids
kill -STOP $daemon
ask kd-b:dead x >$dir/dead2.out &
r2=$!
wait_until pending_is "$agent_key" 2
ktap_check "killed_daemon_on_channel" delivered_by "$agent_key" chan
kill -KILL $daemon
wait $daemon
wait $r1
wait $r2
same "killed_daemon_read_construction_EOWNERDEAD" "$(cat $dir/dead1.out)" "Owner died"
same "killed_daemon_unread_construction_EOWNERDEAD" "$(cat $dir/dead2.out)" "Owner died"
kill_slow_handlers

# --- --delivery signal: everything as before the channel.
keyctl new_session >/dev/null
start_daemon sig -c $dir/chan.conf --delivery signal
ktap_check "signal_delivery_agent_key" delivered_by "$agent_key" "sig 40"
same "signal_builtin_instantiate" "$(ask kd-b:s1 hello)" "b:hello:0"
same "signal_piped_handler_stdout" "$(ask kd-p:s1 abc)" "ABC"
same "signal_piped_failure_negate_line" "$(ask kd-pf:s1 x)" "Required key not available"
check "signal_requests_signalled" "[ \$(grep -c ', %S ' $dir/sig.log) -eq 3 ] &&
	! grep -q 'from the channel' $dir/sig.log && ! ls -l /proc/$daemon/fd | grep -q /dev/keyagent"
stop_daemon
ktap_check "signal_delivery_stops" [ $status = 0 ]

# --- A line running a program that answers with keyctl: signals for the
# type, said in the log.
keyctl new_session >/dev/null
start_daemon mixed -c $dir/mixed.conf
ktap_check "authority_line_keeps_signal" delivered_by "$agent_key" "sig 40"
check "authority_line_logged" "grep -q 'user: delivered by signal 40: the line $dir/mixed.conf:7 $dir/handler runs a program' $dir/mixed.log"
same "keyctl_handler_answers" "$(ask kd-k:1 hi)" "keyctl:hi"
same "builtin_beside_keyctl_line" "$(ask kd-b:m1 x)" "b:x:0"
stop_daemon

# --- A reload moves the type to signals and back.
cp $dir/chan.conf $dir/live.conf
keyctl new_session >/dev/null
start_daemon reload -c $dir/live.conf
first=$agent_key
cp $dir/mixed.conf $dir/live.conf
kill -HUP $daemon
wait_until grep -q "SIGHUP: user: now delivered by signal 40" $dir/reload.log
second=$(sed -n 's/.*now delivered by signal 40 (agent key \([0-9]*\), replacing.*/\1/p' $dir/reload.log)
echo "# agent keys: $first, then $second"
# The module updates the key in place: the same serial, now a signal agent's.
check "reload_to_signal_replaces_agent_key" "[ -n '$second' ] && [ '$second' = '$first' ]"
ktap_check "reload_to_signal_delivery" delivered_by "$second" "sig 40"
same "reload_to_signal_keyctl_handler" "$(ask kd-k:r1 hi)" "keyctl:hi"
cp $dir/chan.conf $dir/live.conf
kill -HUP $daemon
wait_until grep -q "SIGHUP: user: now delivered by channel /dev/keyagent" $dir/reload.log
third=$(sed -n 's/.*now delivered by channel \/dev\/keyagent (agent key \([0-9]*\), replacing.*/\1/p' $dir/reload.log)
ktap_check "reload_back_to_channel" delivered_by "$third" chan
same "reload_back_to_channel_piped" "$(ask kd-p:r2 abc)" "ABC"
stop_daemon

# --- No /dev/keyagent where the daemon runs (a mount namespace with its own
# /dev): signals, said in the log.
keyctl new_session >/dev/null
unshare -m --propagation private sh -c "mount -t tmpfs tmpfs /dev && mknod -m 666 /dev/null c 1 3 &&
	exec $KD -n -v --type user -c $dir/chan.conf" >$dir/nodev.out 2>$dir/nodev.log &
daemon=$!
wait_until test -s $dir/nodev.out
agent_key=$(awk '$1 == "user" { print $2 }' $dir/nodev.out)
check "no_device_logged" "grep -q '/dev/keyagent: ENOENT: No such file or directory: the keyagent module offers no channel; delivering by signal 40' $dir/nodev.log"
ktap_check "no_device_signal_delivery" delivered_by "$agent_key" "sig 40"
same "no_device_builtin_answers" "$(ask kd-b:n1 x)" "b:x:0"
stop_daemon

echo $old_timeout >$timeout_param
if [ "$KTAP_FAIL" -gt 0 ]; then
	for log in chan dead sig mixed reload nodev; do
		echo "# $log.log:"
		sed 's/^/#   /' $dir/$log.log
	done
fi
ktap_finish
