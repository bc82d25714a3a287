#!/bin/sh
# Loading and unloading: the key type comes and goes; 50 cycles stay clean.
cd "$(dirname "$0")" && . ./ktap.sh
ktap_header 5
MODULE=/lib/keyagent/keyagent.ko

ensure_module
keyctl new_session >/dev/null
ktap_check "type_registered_when_loaded" keyctl add keyagent user 40 @s

rmmod keyagent
out=$(keyctl add keyagent user 40 @s 2>&1)
case $out in
*"No such device"*) ktap_pass "type_gone_when_unloaded" ;;
*) echo "# add_key with the module unloaded: $out"; ktap_fail "type_gone_when_unloaded" ;;
esac

ok=1
i=0
while [ $i -lt 50 ]; do
	insmod $MODULE || { ok=0; break; }
	keyctl add keyagent user 40 @s >/dev/null || { ok=0; break; }
	rmmod keyagent || { ok=0; break; }
	i=$((i + 1))
done
echo "# $i load/unload cycles"
[ $ok = 1 ] && ktap_pass "load_unload_50_cycles" || ktap_fail "load_unload_50_cycles"

# Parameters given at load time, changed at run time.
insmod $MODULE request_timeout=7 max_pending=3
t=$(cat /sys/module/keyagent/parameters/request_timeout)
m=$(cat /sys/module/keyagent/parameters/max_pending)
echo 12 >/sys/module/keyagent/parameters/request_timeout
t2=$(cat /sys/module/keyagent/parameters/request_timeout)
echo "# request_timeout $t then $t2, max_pending $m"
[ "$t" = 7 ] && [ "$m" = 3 ] && [ "$t2" = 12 ] && ktap_pass "parameters_at_load_and_run_time" || ktap_fail "parameters_at_load_and_run_time"
rmmod keyagent

insmod $MODULE
n=$(dmesg | grep -c 'keyagent: loaded')
u=$(dmesg | grep -c 'keyagent: unloading')
echo "# load lines $n, unload lines $u"
[ "$n" -eq $((u + 1)) ] && ktap_pass "one_log_line_each_way" || ktap_fail "one_log_line_each_way"
ktap_finish
