#!/bin/sh
# A container answers its own kernel DNS upcalls: two containers (new user,
# network, mount and UTS namespaces, each with its own /etc/hosts) run
# keyagentd --scope net with Debian's /sbin/key.dns_resolver as handler. The
# kernel's dns_query() (made by the test caller module as NFS and CIFS make
# it) in each container is answered from that container's /etc/hosts, and
# cached in its network namespace only; the host's lookup of the same name
# goes to /sbin/request-key, which answers from the host's /etc/hosts.
cd "$(dirname "$0")" && . ./ktap.sh
KD=/bin/keyagentd
CALLER=/lib/keyagent/keyagent_test_caller.ko
KQUERY=/tests/keyagent-test-kquery
if [ ! -x $KD ] || [ ! -x /sbin/key.dns_resolver ] || [ ! -f $CALLER ]; then
	ktap_header 1
	ktap_skip "container_dns" "needs $KD, /sbin/key.dns_resolver and $CALLER in the image"
	ktap_finish
fi
ktap_header 11
ensure_module
grep -q '^keyagent_test_caller ' /proc/modules || insmod $CALLER

dir=/tmp/container-dns
rm -rf $dir
mkdir -p $dir
NAME=kd-dns.example
# Long enough that nothing expires during the test, however slow the machine.
printf 'default_ttl = 3600\n' >$dir/ttl.conf
mkdir -p /etc/keyutils
cp /etc/keyutils/key.dns_resolver.conf $dir/ttl.orig 2>/dev/null
cp $dir/ttl.conf /etc/keyutils/key.dns_resolver.conf
cp /etc/hosts $dir/hosts.orig
THREAD_NAME=kd-thread.example
printf '127.0.0.1\tlocalhost\n10.0.0.1\t%s\n10.0.0.2\t%s\n' $NAME $THREAD_NAME >/etc/hosts
printf 'create dns_resolver * * /sbin/key.dns_resolver %%k\n' >$dir/handlers.conf

# wait_for FILE: until FILE is not empty (up to 5 minutes).
wait_for() {
	for i in $(seq 1 3000); do [ -s "$1" ] && return 0; sleep 0.1; done
	return 1
}

# container NAME ADDRESS: starts container NAME whose /etc/hosts maps $NAME
# to ADDRESS, running keyagentd; it looks $NAME up once the daemon is ready
# and writes the answer to $dir/NAME.answer, then waits for $dir/NAME.stop.
container() {
	printf '127.0.0.1\tlocalhost\n%s\t%s\n%s2\t%s\n' "$2" $NAME "${2%1}" $THREAD_NAME >$dir/hosts.$1
	unshare --user --map-root-user --net --mount --uts --fork sh -c "
		mount --bind $dir/hosts.$1 /etc/hosts
		hostname $1
		$KD --type dns_resolver --scope net --config $dir/handlers.conf \
			>$dir/$1.daemon 2>$dir/$1.log &
		daemon=\$!
		for i in \$(seq 1 3000); do [ -s $dir/$1.daemon ] && break; sleep 0.1; done
		$KQUERY dns_query $NAME >$dir/$1.answer 2>&1
		readlink /proc/self/ns/net >$dir/$1.netns
		for i in \$(seq 1 3000); do [ -e $dir/$1.stop ] && break; sleep 0.1; done
		$KQUERY dns_query $NAME >$dir/$1.again 2>&1
		$KQUERY dns_query_kthread $NAME >$dir/$1.kthread 2>&1
		$KQUERY dns_query_kthread $THREAD_NAME >$dir/$1.kthread-new 2>&1
		kill -TERM \$daemon
		wait \$daemon" &
	eval "pid_$1=\$!"
}

container box1 10.1.1.1
container box2 10.2.2.2
wait_for $dir/box1.netns && wait_for $dir/box2.netns
echo "# box1: $(cat $dir/box1.answer) in $(cat $dir/box1.netns), box2: $(cat $dir/box2.answer) in $(cat $dir/box2.netns)"
ktap_check "container_answers_from_its_hosts" [ "$(cat $dir/box1.answer)" = 10.1.1.1 ]
ktap_check "second_container_answers_from_its_hosts" [ "$(cat $dir/box2.answer)" = 10.2.2.2 ]

host=$($KQUERY dns_query $NAME)
echo "# host: $host"
ktap_check "host_lookup_goes_to_request_key" [ "$host" = 10.0.0.1 ]

# One dns_resolver key per network namespace, each with its own answer.
# (/proc/keys shows 9 characters of the type.)
keys=$(grep -c " dns_resol $NAME: " /proc/keys)
echo "# dns_resolver keys for $NAME: $keys"
ktap_check "cached_once_per_netns" [ "$keys" = 3 ]

# Looked up again: from the cache, the daemons are not asked again.
touch $dir/box1.stop $dir/box2.stop
wait $pid_box1
wait $pid_box2
ktap_check "cached_answer_in_container" [ "$(cat $dir/box1.again)" = 10.1.1.1 ]
ktap_check "cached_answer_in_second_container" [ "$(cat $dir/box2.again)" = 10.2.2.2 ]
asked=$(grep -c "type=dns_resolver description=\"$NAME\"" $dir/box1.log)
echo "# box1's daemon was asked $asked time(s) for $NAME"
ktap_check "daemon_asked_once" [ "$asked" = 1 ]
ktap_check "second_daemon_asked_once" [ "$(grep -c "type=dns_resolver description=\"$NAME\"" $dir/box2.log)" = 1 ]

# A kernel thread naming a container's namespace (as cifsd reconnecting
# does) finds that namespace's cached answer. For a name not cached there,
# 6.12 tags the new key with the kernel thread's own namespace, the initial
# one: the construction goes where the host's go, /sbin/request-key, and no
# container is asked.
echo "# kernel thread lookups in box1: $(cat $dir/box1.kthread) (cached), $(cat $dir/box1.kthread-new) (new)"
ktap_check "kernel_thread_finds_container_cache" [ "$(cat $dir/box1.kthread)" = 10.1.1.1 ]
ktap_check "kernel_thread_new_lookup_gets_host_answer" [ "$(cat $dir/box1.kthread-new)" = 10.0.0.2 ]
asked=$(cat $dir/box1.log $dir/box2.log | grep -c "type=dns_resolver")
ktap_check "kernel_thread_lookups_ask_no_container" [ "$asked" = 2 ]

grep "dns_resol" /proc/keys | sed 's/^/# key: /'
for box in box1 box2; do
	echo "# $box's daemon log:"
	sed 's/^/#   /' $dir/$box.log
done
cp $dir/hosts.orig /etc/hosts
if [ -f $dir/ttl.orig ]; then cp $dir/ttl.orig /etc/keyutils/key.dns_resolver.conf; else rm -f /etc/keyutils/key.dns_resolver.conf; fi
ktap_finish
