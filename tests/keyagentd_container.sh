#!/bin/sh
# keyagentd end to end: the daemon, started in a container (its own user, pid,
# mount and UTS namespaces and hostname), answers requests made outside it with
# handlers that run inside it. Also: concurrent handlers, failing, silent and
# slow handlers, SIGTERM with a construction pending, -- COMMAND, and errors
# refused at start-up. Nothing here depends on how fast the machine is:
# concurrency is shown by handlers that wait for each other, timeouts by
# handlers that would run far longer than the limit.
cd "$(dirname "$0")" && . ./ktap.sh
KD=/bin/keyagentd
MODULE=/lib/keyagent/keyagent.ko
if [ ! -x $KD ]; then
	ktap_header 1
	ktap_skip "keyagentd_container" "no $KD in this image"
	ktap_finish
fi
ktap_header 20
ensure_module

dir=/tmp/keyagentd-test
rm -rf $dir
mkdir -p $dir

# wait_for FILE: up to 60 s for FILE to be non-empty.
wait_for() {
	for i in $(seq 1 600); do [ -s "$1" ] && return 0; sleep 0.1; done
	return 1
}

# Queued and barrier-waiting constructions must not hit the module's answer
# timeout on a loaded machine.
echo 600 >/sys/module/keyagent/parameters/request_timeout

# verdict NAME: pass if the command just before succeeded.
verdict() {
	if [ $? = 0 ]; then ktap_pass "$1"; else ktap_fail "$1"; fi
}

# expect_error NAME OUT TEXT: pass if the requester's output OUT says TEXT.
expect_error() {
	if grep -q "$3" "$2"; then ktap_pass "$1"; else echo "# $(cat "$2")"; ktap_fail "$1"; fi
}

cat >$dir/host-handler <<'EOF'
#!/bin/sh
# Answers with the hostname of the namespaces it runs in.
exec /bin/keyctl instantiate "$1" "$(hostname):$2" 0
EOF
# Four handlers that each wait until all four have started: a daemon that
# runs handlers one at a time never gets past the barrier (they give up after
# 300 s and the keys are rejected).
cat >$dir/barrier-handler <<'EOF'
#!/bin/sh
mkdir -p /tmp/keyagentd-test/barrier
touch "/tmp/keyagentd-test/barrier/$1"
i=0
while [ "$(ls /tmp/keyagentd-test/barrier | wc -l)" -lt 4 ]; do
	i=$((i + 1))
	[ $i -le 3000 ] || exit 1
	sleep 0.1
done
exec /bin/keyctl instantiate "$1" "$2" 0
EOF
# A handler whose background child writes after the handler has exited.
cat >$dir/bg-handler <<'EOF'
#!/bin/sh
(sleep 1; echo "late output"; echo done >/tmp/keyagentd-test/bg.done) &
exec /bin/keyctl instantiate "$1" bg 0
EOF
chmod +x $dir/host-handler $dir/barrier-handler $dir/bg-handler

cat >$dir/handlers.conf <<EOF
# Handlers of the container's daemon.
#OP    TYPE  DESCRIPTION     CALLOUT  PROGRAM ARGS...
create user  kd-host:*       *        $dir/host-handler %k %c
create user  kd-builtin:*    *        builtin:instantiate "%t|%d|%c|%u|%g|%o|100%%"
create user  kd-barrier:*    *        $dir/barrier-handler %k %c
create user  kd-false:*      *        /bin/false
create user  kd-silent:*     *        /bin/true
create user  kd-slow:*       *        /bin/sleep 600
create user  kd-bg:*         *        $dir/bg-handler %k
EOF

# The container: a shell in new namespaces sets its hostname and becomes the
# daemon. It shares this shell's session keyring, so the daemon's agent key
# lands where this shell's requests look.
keyctl new_session >/dev/null
unshare --user --map-root-user --pid --mount --uts --fork \
	sh -c "hostname kd-container && exec $KD --type user --config $dir/handlers.conf --handler-timeout 500" \
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
for i in $(seq 1 600); do
	line=$(grep "key $key type=user description=\"kd-host:1\"" $dir/daemon.log) && break
	sleep 0.1
done
echo "# $line"
case $line in
*"requester=pid:0,uid:0 handler=\"$dir/handlers.conf:3 $dir/host-handler\" outcome=\"answered (handler exited 0)\" duration="*)
	ktap_pass "log_line_per_request" ;;
*) ktap_fail "log_line_per_request" ;;
esac

answer=$(keyctl print "$(keyctl request2 user kd-builtin:x cb @s)")
echo "# builtin: $answer"
ktap_check "builtin_instantiate_substitutions" [ "$answer" = "user|kd-builtin:x|cb|0|0|create|100%" ]

# Four requests at once, whose handlers wait for each other.
for i in 1 2 3 4; do
	keyctl request2 user "kd-barrier:$i" "barrier-$i" @s >$dir/barrier-$i.out 2>&1 &
	eval "req_$i=\$!"
done
ok=1
for i in 1 2 3 4; do
	eval "wait \$req_$i" || ok=0
	[ "$(keyctl print "$(cat $dir/barrier-$i.out)")" = "barrier-$i" ] || ok=0
done
[ $ok = 1 ]
verdict "concurrent_handlers"

# The handler's output is read until its own children close it: they never
# get SIGPIPE.
v=$(keyctl print "$(keyctl request2 user kd-bg:1 x @s)")
wait_for $dir/bg.done
for i in $(seq 1 600); do grep -q "handler output: late output" $dir/daemon.log && break; sleep 0.1; done
ktap_check "background_output_logged_after_exit" sh -c "[ '$v' = bg ] && [ -s $dir/bg.done ] && grep -q 'handler output: late output' $dir/daemon.log"

keyctl request2 user kd-false:1 x @s >$dir/false.out 2>&1
expect_error "failing_handler_rejects_EKEYREJECTED" $dir/false.out "Key was rejected by service"

keyctl request2 user kd-silent:1 x @s >$dir/silent.out 2>&1
expect_error "silent_handler_negates_ENOKEY" $dir/silent.out "Required key not available"

# A handler that would run 600 s under a 2 s limit, in a second daemon (in
# its own session keyring): killed, and the key rejected with ETIMEDOUT.
keyctl session - sh -c "
	$KD --type user --config $dir/handlers.conf --handler-timeout 2 >$dir/short.out 2>$dir/short.log &
	daemon=\$!
	i=0
	while [ ! -s $dir/short.out ] && [ \$i -lt 600 ]; do sleep 0.1; i=\$((i + 1)); done
	keyctl request2 user kd-slow:1 x @s >$dir/slow.out 2>&1
	kill -TERM \$daemon
	wait \$daemon" >/dev/null 2>&1
expect_error "slow_handler_killed_ETIMEDOUT" $dir/slow.out "Connection timed out"

# SIGTERM while a handler runs: the requester is released with ECANCELED.
keyctl request2 user kd-slow:2 x @s >$dir/term.out 2>&1 &
requester=$!
for i in $(seq 1 600); do pidof sleep >/dev/null && break; sleep 0.1; done
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
for i in $(seq 1 600); do pidof sleep >/dev/null && break; sleep 0.1; done
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
[ $status = 2 ] && grep -q "$dir/bad.conf:3: syntax error: expected OP TYPE" $dir/bad.log
verdict "malformed_config_refused"

printf 'create user * * /bin/echo %%k %%z\n' >$dir/subst.conf
$KD --type user --config $dir/subst.conf 2>$dir/subst.log
status=$?
echo "# $(cat $dir/subst.log)"
[ $status = 2 ] && grep -q "$dir/subst.conf:1: unsupported macro %z" $dir/subst.log
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
