#!/bin/sh
# keyagentd end to end: the daemon, started in a container (its own user, pid,
# mount and UTS namespaces and hostname), answers requests made outside it with
# handlers that run inside it. Also: concurrent handlers, failing, silent and
# slow handlers, SIGTERM with a construction pending, -- COMMAND, and errors
# refused at start-up.
cd "$(dirname "$0")" && . ./ktap.sh
KD=/bin/keyagentd
MODULE=/lib/keyagent/keyagent.ko
if [ ! -x $KD ]; then
	ktap_header 1
	ktap_skip "keyagentd_container" "no $KD in this image"
	ktap_finish
fi
ktap_header 19
ensure_module

dir=/tmp/keyagentd-test
rm -rf $dir
mkdir -p $dir

# wait_for FILE: up to 10 s for FILE to be non-empty.
wait_for() {
	for i in $(seq 1 100); do [ -s "$1" ] && return 0; sleep 0.1; done
	return 1
}

# now_ms: milliseconds since boot.
now_ms() {
	read -r up _ </proc/uptime
	cs=${up#*.}
	cs=${cs#0}
	echo $((${up%.*} * 1000 + cs * 10))
}

# verdict NAME: pass if the command just before succeeded.
verdict() {
	if [ $? = 0 ]; then ktap_pass "$1"; else ktap_fail "$1"; fi
}

# expect_error NAME OUT TEXT: pass if the requester's output OUT says TEXT.
expect_error() {
	if grep -q "$3" "$2"; then ktap_pass "$1"; else echo "# $(cat "$2")"; ktap_fail "$1"; fi
}

cat >$dir/handlers.conf <<'EOF'
# Handlers of the container's daemon.
#OP    TYPE  DESCRIPTION     CALLOUT  PROGRAM ARGS...
create user  kd-host:*       *        /bin/sh -c '/bin/keyctl instantiate %k "$(hostname):%c" 0'
create user  kd-builtin:*    *        builtin:instantiate "%t|%d|%c|%u|%g|%S|100%%"
create user  kd-sleep:*      *        /bin/sh -c 'sleep 2; /bin/keyctl instantiate %k "%c" %S'
create user  kd-false:*      *        /bin/false
create user  kd-silent:*     *        /bin/true
create user  kd-slow:*       *        /bin/sleep 60
EOF

# The container: a shell in new namespaces sets its hostname and becomes the
# daemon. It shares this shell's session keyring, so the daemon's agent key
# lands where this shell's requests look.
keyctl new_session >/dev/null
unshare --user --map-root-user --pid --mount --uts --fork \
	sh -c "hostname kd-container && exec $KD --type user --config $dir/handlers.conf --handler-timeout 3" \
	>$dir/daemon.out 2>$dir/daemon.log &
container=$!
wait_for $dir/daemon.out
read -r agent_type agent_key <$dir/daemon.out
echo "# daemon: $agent_type $agent_key; host $(hostname)"
[ "$agent_type" = user ] && [ -n "$agent_key" ]
verdict "daemon_registers_in_container"

key=$(keyctl request2 user kd-host:1 hello @s)
answer=$(keyctl print "$key")
echo "# answer: $answer"
[ "$answer" = "kd-container:hello" ] && [ "$(hostname)" != kd-container ]
verdict "container_answers_outside_request"

# The requester is outside the daemon's pid namespace: pid 0 there.
# The daemon logs when it has reaped the handler, maybe after the answer.
for i in $(seq 1 50); do
	line=$(grep "key $key type=user description=\"kd-host:1\"" $dir/daemon.log) && break
	sleep 0.1
done
echo "# $line"
case $line in
*"requester=pid:0,uid:0 handler=\"$dir/handlers.conf:3 /bin/sh\" outcome=\"answered (handler exited 0)\" duration="*)
	ktap_pass "log_line_per_request" ;;
*) ktap_fail "log_line_per_request" ;;
esac

answer=$(keyctl print "$(keyctl request2 user kd-builtin:x cb @s)")
echo "# builtin: $answer"
ktap_check "builtin_instantiate_substitutions" [ "$answer" = "user|kd-builtin:x|cb|0|0|0|100%" ]

# Four requests at once, whose handlers each take 2 s: one after the other
# they would take 8 s.
start=$(now_ms)
for i in 1 2 3 4; do
	keyctl request2 user "kd-sleep:$i" "sleep-$i" @s >$dir/sleep-$i.out 2>&1 &
	eval "req_$i=\$!"
done
ok=1
for i in 1 2 3 4; do
	eval "wait \$req_$i" || ok=0
	[ "$(keyctl print "$(cat $dir/sleep-$i.out)")" = "sleep-$i" ] || ok=0
done
took=$(($(now_ms) - start))
echo "# 4 requests with 2 s handlers: ${took} ms"
[ $ok = 1 ] && [ $took -lt 7000 ]
verdict "concurrent_handlers"

keyctl request2 user kd-false:1 x @s >$dir/false.out 2>&1
expect_error "failing_handler_rejects_EKEYREJECTED" $dir/false.out "Key was rejected by service"

keyctl request2 user kd-silent:1 x @s >$dir/silent.out 2>&1
expect_error "silent_handler_negates_ENOKEY" $dir/silent.out "Required key not available"

start=$(now_ms)
keyctl request2 user kd-slow:1 x @s >$dir/slow.out 2>&1
took=$(($(now_ms) - start))
echo "# slow handler failed after ${took} ms"
if grep -q "Connection timed out" $dir/slow.out && [ $took -lt 10000 ]; then
	ktap_pass "slow_handler_killed_ETIMEDOUT"
else
	cat $dir/slow.out
	ktap_fail "slow_handler_killed_ETIMEDOUT"
fi

# SIGTERM while a handler runs: the requester is released with ECANCELED.
keyctl request2 user kd-slow:2 x @s >$dir/term.out 2>&1 &
requester=$!
for i in $(seq 1 50); do pidof sleep >/dev/null && break; sleep 0.1; done
kill -TERM "$(pidof keyagentd)"
wait $requester
expect_error "sigterm_cancels_pending_ECANCELED" $dir/term.out "Operation canceled"
wait $container
status=$?
echo "# daemon exit status $status"
ktap_check "sigterm_exits_0" [ $status = 0 ]

under_construction=$(awk '$2 ~ /U/' /proc/keys)
[ -z "$under_construction" ] || echo "# $under_construction"
ktap_check "nothing_under_construction" [ -z "$under_construction" ]
ktap_check "agent_key_retired" sh -c "! keyctl describe $agent_key >/dev/null 2>&1"
answer=$(keyctl print "$(keyctl request2 user kd-after x @s)")
ktap_check "fallback_after_stop" [ "$answer" = "request-key:x" ]
echo "# daemon log:"
sed 's/^/#   /' $dir/daemon.log

# -- COMMAND: a new session keyring served by the daemon; its exit status.
$KD --type user -- sh -c '
	v=$(keyctl print "$(keyctl request2 user kd-cmd from-cmd @s)")
	[ "$v" = from-cmd ] && exit 7
	exit 1' 2>$dir/cmd.log
status=$?
echo "# -- COMMAND exit status $status"
ktap_check "command_exit_status" [ $status = 7 ]

# A stop signal goes to COMMAND; killed by SIGTERM, its status is 128+15.
$KD --type user -- sleep 60 2>>$dir/cmd.log &
daemon=$!
for i in $(seq 1 50); do pidof sleep >/dev/null && break; sleep 0.1; done
kill -TERM $daemon
wait $daemon
status=$?
echo "# -- sleep 60, SIGTERM: exit status $status"
ktap_check "command_gets_stop_signal" [ $status = 143 ]

# Errors refused at start-up.
printf '# comment\ncreate user * * /bin/true\ncreate user *\n' >$dir/bad.conf
$KD --type user --config $dir/bad.conf 2>$dir/bad.log
status=$?
echo "# $(cat $dir/bad.log)"
[ $status = 2 ] && grep -q "$dir/bad.conf:3: expected OP TYPE" $dir/bad.log
verdict "malformed_config_refused"

printf 'create user * * /bin/echo %%k %%z\n' >$dir/subst.conf
$KD --type user --config $dir/subst.conf 2>$dir/subst.log
status=$?
echo "# $(cat $dir/subst.log)"
[ $status = 2 ] && grep -q "$dir/subst.conf:1: unknown substitution %z" $dir/subst.log
verdict "unknown_substitution_refused"

$KD --type .hidden 2>$dir/einval.log
status=$?
echo "# $(cat $dir/einval.log)"
[ $status = 1 ] && grep -q "EINVAL: invalid type name" $dir/einval.log
verdict "invalid_type_explained"

rmmod keyagent
$KD --type user 2>$dir/enodev.log
status=$?
insmod $MODULE
echo "# $(cat $dir/enodev.log)"
[ $status = 1 ] && grep -q "keyagent module is not loaded" $dir/enodev.log
verdict "module_not_loaded_explained"
ktap_finish
