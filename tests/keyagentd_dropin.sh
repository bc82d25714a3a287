#!/bin/sh
# keyagentd as a drop-in for /sbin/request-key: with the configuration
# request-key reads (Debian's stock /etc/request-key.conf, /etc/request-key.d)
# and Debian's own handlers (request-key-debug.sh, key.dns_resolver, keyctl,
# cat), every request gets what /sbin/request-key gives in the same boot: the
# same payload, the same error, the same expiry. Then: SIGHUP reloads (a bad
# file keeps the old configuration), and the bound on concurrent handlers.
#
# Each request is made twice with the same description: in a session keyring
# holding keyagentd's agent keys (answered by keyagentd), and in a new session
# keyring without them (answered by /sbin/request-key). Nothing depends on how
# fast the machine is: expiries are compared with the timeouts the handlers
# set, with a minute of slack.
cd "$(dirname "$0")" && . ./ktap.sh
KD=/bin/keyagentd
if [ ! -x $KD ] || [ ! -x /sbin/key.dns_resolver ] || [ ! -f /etc/request-key.conf ]; then
	ktap_header 1
	ktap_skip "keyagentd_dropin" "no keyagentd, key.dns_resolver or stock request-key.conf in this image"
	ktap_finish
fi
ktap_header 31
ensure_module
timeout_param=/sys/module/keyagent/parameters/request_timeout
old_timeout=$(cat $timeout_param)
echo 600 >$timeout_param

dir=/tmp/kd-dropin
rm -rf $dir
mkdir -p $dir

# wait_for_grep PATTERN FILE: up to 60 s for FILE to hold PATTERN.
wait_for_grep() {
	for i in $(seq 1 600); do grep -q "$1" "$2" 2>/dev/null && return 0; sleep 0.1; done
	return 1
}

# Handlers of the extra lines below, run by both request-key and keyagentd.
cat >$dir/handler <<'EOF'
#!/bin/sh
mode=$1
shift
case $mode in
args) key=$1; shift; exec /bin/keyctl instantiate "$key" "$*" 0 ;;
fail) echo "handler failing on purpose" >&2; exit 3 ;;
big) head -c 40000 /dev/zero | tr '\0' x; exit 0 ;;
upper) tr a-z A-Z; exit 0 ;;
env) exec /bin/keyctl instantiate "$1" "$HOME $PATH $(env | wc -l)" 0 ;;
esac
exit 9
EOF
chmod +x $dir/handler

# Extra lines beside the stock ones, read by request-key and by keyagentd -R
# (a negate line only runs when a piped handler fails; request-key 1.6.3 only
# takes it if it is less wild than the create line, as here).
cat >/etc/request-key.d/kd-dropin.conf <<EOF
create	user	kd-macro:*	*	$dir/handler args %k %o %t %d %c %u %g %%k key-%k %kx
create	user	kd-sub:*	*	$dir/handler args %k %{user:kd-secret}
create	user	kd-pipe:*	*	|$dir/handler upper
create	user	kd-pipefail:*	*	|$dir/handler fail
create	user	kd-pipe9:*	*	|$dir/handler none
negate	user	kd-pipefail:1	*	/bin/keyctl reject %k 20 rejected %S
create	user	kd-pipebig:*	*	|$dir/handler big
create	user	kd-silent:*	*	/bin/true
create	user	kd-env:*	*	$dir/handler env %k
EOF

# The agent: keyagentd with request-key's configuration and errors, in this
# shell's session keyring.
keyctl new_session >/dev/null
session=$(keyctl show @s | sed -n 's/^ *\([0-9][0-9]*\) .*keyring.*/\1/p' | head -n 1)
# Others may link (and search) it: the keysub case nests it in a new session.
keyctl setperm $session 0x3f1b0000
$KD -R --errors request-key --type user --type dns_resolver -v >$dir/daemon.out 2>$dir/daemon.log &
daemon=$!
wait_for_grep dns_resolver $dir/daemon.out
echo "# $(tr '\n' ' ' <$dir/daemon.out)"
# check NAME CMD...: like ktap_check, for a shell condition in one string.
check() {
	if sh -c "$2"; then ktap_pass "$1"; else ktap_fail "$1"; fi
}
check "stock_configuration_loads" "grep -q '^user [0-9]' $dir/daemon.out && grep -q '^dns_resolver [0-9]' $dir/daemon.out && kill -0 $daemon"

# ask WHERE TYPE DESC CALLOUT: requests the key in this session (WHERE=agent)
# or in a new session keyring (WHERE=request-key, so /sbin/request-key answers);
# prints "payload=... expiry=..." or "error=... expiry=...", with the
# requester's session keyring serial replaced by SESSION.
ask() {
	where=$1 type=$2 desc=$3 callout=$4
	script='
		# keys: serials and expiries of the keys of this type and description.
		keys() {
			awk -v t="$1" -v d="$2" "\$8 == substr(t, 1, 9) && (\$9 == d\":\" || \$9 == d) { print \$1, \$4 }" /proc/keys
		}
		before=$(keys "$1" "$2" | cut -d" " -f1)
		s=$(keyctl show @s | sed -n "s/^ *\([0-9][0-9]*\) .*keyring.*/\1/p" | head -n 1)
		if k=$(keyctl request2 "$1" "$2" "$3" @s 2>/tmp/kd-dropin/err); then
			printf "payload=%s" "$(keyctl print "$k" | sed "s/\b$s\b/SESSION/g")"
		else
			printf "error=%s" "$(sed "s/^[^:]*: //" /tmp/kd-dropin/err)"
		fi
		# The key this request made: the one that was not there before.
		keys "$1" "$2" | while read -r serial expiry; do
			case " $(echo $before) " in *" $serial "*) ;; *) echo "$expiry" ;; esac
		done >/tmp/kd-dropin/expiry
		printf " expiry=%s\n" "$(head -n 1 /tmp/kd-dropin/expiry)"'
	if [ "$where" = agent ]; then
		sh -c "$script" sh "$type" "$desc" "$callout"
	else
		keyctl session - sh -c "$script" sh "$type" "$desc" "$callout" 2>/dev/null
	fi
}

# seconds EXPIRY: the least and the most seconds a /proc/keys expiry stands for.
seconds() {
	case $1 in
	*s) echo "${1%s} ${1%s}" ;;
	*m) echo "$(( ${1%m} * 60 )) $(( ${1%m} * 60 + 59 ))" ;;
	*h) echo "$(( ${1%h} * 3600 )) $(( ${1%h} * 3600 + 3599 ))" ;;
	*) echo "x x" ;;
	esac
}

# same NAME TYPE DESC CALLOUT EXPECTED [TIMEOUT]: the agent's and request-key's
# answers are identical (payload or error) and EXPECTED; with TIMEOUT, both
# keys expire within a minute before TIMEOUT seconds from now, else never.
same() {
	name=$1 type=$2 desc=$3 callout=$4 expected=$5 timeout=$6
	a=$(ask agent "$type" "$desc" "$callout")
	r=$(ask request-key "$type" "$desc" "$callout")
	echo "# $name: keyagentd:   $a"
	echo "# $name: request-key: $r"
	ok=1
	[ "${a% expiry=*}" = "${r% expiry=*}" ] || ok=0
	[ "${a% expiry=*}" = "$expected" ] || { echo "# expected $expected"; ok=0; }
	ea=${a##* expiry=} er=${r##* expiry=}
	if [ -z "$timeout" ]; then
		[ "$ea" = perm ] && [ "$er" = perm ] || ok=0
	else
		for e in "$ea" "$er"; do
			set -- $(seconds "$e")
			case "$1$2" in ''|*[!0-9]*) ok=0; continue ;; esac
			[ "$1" -le "$timeout" ] && [ "$2" -gt $((timeout - 60)) ] || ok=0
		done
	fi
	if [ $ok = 1 ]; then ktap_pass "$name"; else ktap_fail "$name"; fi
}

# The five stock user lines.
same "stock_negate_line" user debug:n1 negate "error=Required key not available" 30
same "stock_rejected_line" user debug:r1 rejected "error=Key was rejected by service" 30
same "stock_expired_line" user debug:e1 expired "error=Key has expired" 30
same "stock_revoked_line" user debug:v1 revoked "error=Key has been revoked" 30
same "stock_piped_cat_line" user debug:loop:z1 abcdefghijkl "payload=abcdefghijkl"
same "stock_debug_script_line" user debug:spoon1 spoon "payload=Debug spoon"
same "stock_debug_script_negates" user debug:neg1 neg "error=Required key not available" 30
# key.dns_resolver, unchanged: resolves from /etc/hosts, expiry default_ttl 600.
same "dns_resolver_ipv4" dns_resolver kd-dns.test ipv4 "payload=192.0.2.10" 600
same "dns_resolver_second_name" dns_resolver kd-dns2.test "" "payload=198.51.100.7" 600
same "dns_resolver_ipv6" dns_resolver kd-dns6.test ipv6 "payload=2001:db8::53" 600
a=$(ask agent dns_resolver nosuch.test "")
r=$(ask request-key dns_resolver nosuch.test "")
echo "# dns unknown name: keyagentd: $a; request-key: $r"
check "dns_resolver_unknown_name" "[ '${a% expiry=*}' = '${r% expiry=*}' ] && [ '${a%%=*}' = error ]"

# Every macro, as whole arguments only.
same "macros_whole_arguments" user kd-macro:1 cb "payload=create user kd-macro:1 cb 0 0 %k key-%k %kx"
# %{TYPE:DESCRIPTION}: a key only the requester has (in a new session keyring
# that links the agent's), found through the authority it holds.
keyctl session - sh -c "keyctl link $session @s && keyctl add user kd-secret s3cret @s >/dev/null &&
	keyctl print \$(keyctl request2 user kd-sub:1 x @s)" >$dir/sub.agent 2>$dir/sub.err
keyctl session - sh -c 'keyctl add user kd-secret s3cret @s >/dev/null &&
	keyctl print $(keyctl request2 user kd-sub:1 x @s)' >$dir/sub.rk 2>>$dir/sub.err
grep -v "^Joined session keyring" $dir/sub.err
echo "# keysub: keyagentd: $(cat $dir/sub.agent); request-key: $(cat $dir/sub.rk)"
check "keysub_macro_from_requester_keyrings" "[ \"\$(cat $dir/sub.agent)\" = s3cret ] && [ \"\$(cat $dir/sub.rk)\" = s3cret ] && grep -q 'kd-sub:1.*answered' $dir/daemon.log"
# The kernel's environment for request-key, and so for its handlers.
n=$(env -i HOME=/ PATH=/sbin:/bin:/usr/sbin:/usr/bin /bin/sh -c 'env | wc -l')
same "handler_environment" user kd-env:1 x "payload=/ /sbin:/bin:/usr/sbin:/usr/bin $n"
same "piped_handler_payload" user kd-pipe:1 hello "payload=HELLO"
# A piped handler exits 9 and only the stock "negate * * *" line matches: it
# is not less wild than the create line, so request-key 1.6.3 runs the create
# command again, without its arguments (the handler exits 9 again: ENOKEY for
# 60 s from the kernel); keyagentd runs the negate line (ENOKEY for 30 s).
a=$(ask agent user kd-pipe9:1 x)
r=$(ask request-key user kd-pipe9:1 x)
echo "# piped failure, stock negate line: keyagentd: $a; request-key: $r"
case "$a|$r" in
"error=Required key not available expiry="[1-3][0-9]s"|error=Required key not available expiry="*)
	ktap_pass "piped_failure_runs_stock_negate_line" ;;
*) ktap_fail "piped_failure_runs_stock_negate_line" ;;
esac
same "piped_failure_runs_negate_line" user kd-pipefail:1 x "error=Key was rejected by service" 20
same "piped_payload_too_big" user kd-pipebig:1 x "error=Required key not available" 60
same "silent_handler" user kd-silent:1 x "error=Required key not available" 60
wait_for_grep "handler stderr: handler failing on purpose" $dir/daemon.log
ktap_check "piped_stderr_logged" grep -q "handler stderr: handler failing on purpose" $dir/daemon.log

# %S: the requester's session keyring, where request-key-debug.sh links the key.
k=$(keyctl request2 user debug:link1 x @s)
check "session_keyring_macro" "grep -q 'RQDebug session keyring: $session\$' $dir/daemon.log && keyctl rdescribe $k >/dev/null"

# The test lines of the other tests still apply beside the stock lines.
v=$(keyctl session - sh -c 'keyctl print $(keyctl request2 user kd-fallback x @s)')
ktap_check "tests_fallback_line_applies" [ "$v" = "request-key:x" ]

kill -TERM $daemon
wait $daemon
ktap_check "daemon_stops_cleanly" [ $? = 0 ]
rm -f /etc/request-key.d/kd-dropin.conf

# SIGHUP reloads; a file with an error keeps the previous configuration.
printf 'create user kd-reload:* * builtin:instantiate v1\n' >$dir/reload.conf
keyctl new_session >/dev/null
$KD -c $dir/reload.conf --type user --link @u >$dir/reload.out 2>$dir/reload.log &
daemon=$!
wait_for_grep user $dir/reload.out
read -r _ agent_key <$dir/reload.out
check "link_agent_key_into_user_keyring" "[ \"\$(keyctl search @u keyagent user)\" = $agent_key ]"
v1=$(keyctl print "$(keyctl request2 user kd-reload:1 x @s)")
printf 'create user kd-reload:* * builtin:instantiate v2\n' >$dir/reload.conf
kill -HUP $daemon
wait_for_grep "configuration reloaded" $dir/reload.log
v2=$(keyctl print "$(keyctl request2 user kd-reload:2 x @s)")
printf 'create user kd-reload:* * builtin:instantiate v3\ncreate user\n' >$dir/reload.conf
kill -HUP $daemon
wait_for_grep "keeping the previous configuration" $dir/reload.log
v3=$(keyctl print "$(keyctl request2 user kd-reload:3 x @s)")
echo "# reload: $v1 $v2 $v3; $(grep -h SIGHUP $dir/reload.log | tr '\n' ' ')"
ktap_check "sighup_reloads" [ "$v1 $v2" = "v1 v2" ]
check "bad_reload_keeps_old_configuration" "[ '$v3' = v2 ] && grep -q '$dir/reload.conf:2: syntax error' $dir/reload.log && kill -0 $daemon"
kill -TERM $daemon
wait $daemon
check "linked_agent_key_retired" "! keyctl search @u keyagent user >/dev/null 2>&1"

# The bound: 30 requests at once, at most 3 handlers. Each handler counts how
# many run (under a mkdir lock) and waits until the other two of its group of
# three have started, so the daemon must run 3 at once, and never more.
mkdir -p $dir/bound
echo 0 >$dir/bound/running
echo 0 >$dir/bound/max
echo 0 >$dir/bound/entered
cat >$dir/bound-handler <<'EOF'
#!/bin/sh
d=/tmp/kd-dropin/bound
lock() { while ! mkdir $d/lock 2>/dev/null; do sleep 0.01; done; }
lock
n=$(($(cat $d/running) + 1)); echo $n >$d/running
[ $n -le "$(cat $d/max)" ] || echo $n >$d/max
e=$(($(cat $d/entered) + 1)); echo $e >$d/entered
rmdir $d/lock
group=$(( (e + 2) / 3 * 3 ))
i=0
while [ "$(cat $d/entered)" -lt $group ]; do
	i=$((i + 1)); [ $i -le 3000 ] || exit 1; sleep 0.1
done
lock
echo $(($(cat $d/running) - 1)) >$d/running
rmdir $d/lock
exec /bin/keyctl instantiate "$1" ok 0
EOF
chmod +x $dir/bound-handler
printf 'create user kd-bound:* * %s %%k\n' $dir/bound-handler >$dir/bound.conf
keyctl new_session >/dev/null
$KD -c $dir/bound.conf --type user --max-handlers 3 --handler-timeout 500 -v >$dir/bound.out 2>$dir/bound.log &
daemon=$!
wait_for_grep user $dir/bound.out
pids=
for i in $(seq 1 30); do
	keyctl request2 user "kd-bound:$i" x @s >$dir/bound/out-$i 2>&1 &
	pids="$pids $!"
done
ok=0
for p in $pids; do wait $p && ok=$((ok + 1)); done
echo "# bound: $ok of 30 answered, at most $(cat $dir/bound/max) handlers at once, $(grep -c 'queued' $dir/bound.log) queued"
ktap_check "bound_every_request_answered" [ $ok = 30 ]
ktap_check "bound_never_exceeded" [ "$(cat $dir/bound/max)" = 3 ]
ktap_check "bound_queues" grep -q "queued (3 handler(s) running" $dir/bound.log
kill -TERM $daemon
wait $daemon

echo "$old_timeout" >$timeout_param
echo "# agent log:"
sed 's/^/#   /' $dir/daemon.log | grep -v ': debug: ' | head -n 80
ktap_finish
