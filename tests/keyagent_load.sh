#!/bin/sh
# Loading and unloading: the key type comes and goes; 50 cycles stay clean.
cd "$(dirname "$0")" && . ./ktap.sh
ktap_header 4
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

insmod $MODULE
n=$(dmesg | grep -c 'keyagent: loaded')
u=$(dmesg | grep -c 'keyagent: unloading')
echo "# load lines $n, unload lines $u"
[ "$n" -eq $((u + 1)) ] && ktap_pass "one_log_line_each_way" || ktap_fail "one_log_line_each_way"
ktap_finish
