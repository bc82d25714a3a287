// SPDX-License-Identifier: GPL-2.0
/*
 * Registering agents: what add_key("keyagent", ...) accepts and refuses, and
 * what the other key operations do on keyagent keys.
 */
#include "kselftest_harness.h"
#include "keyagent_util.h"

static const int sig_zero = 0, sig_kill = 9, sig_31 = 31, sig_min = 32,
		 sig_max = 64, sig_65 = 65, sig_neg = -1;
static char page[4096];

FIXTURE(payload) {};

FIXTURE_VARIANT(payload) {
	const void *data;
	size_t len;
	int error;	/* 0: accepted */
};

#define NATIVE(name, value, err) \
	FIXTURE_VARIANT_ADD(payload, name) { .data = &value, .len = 4, .error = err }
#define TEXT(name, text, err) \
	FIXTURE_VARIANT_ADD(payload, name) { .data = text, .len = sizeof(text) - 1, .error = err }

TEXT(empty, "", EINVAL);
TEXT(one_byte_not_a_digit, "x", EINVAL);
TEXT(one_byte_not_realtime, "9", EINVAL);
TEXT(three_bytes_garbage, "a0b", EINVAL);
TEXT(three_bytes_decimal_newline, "40\n", 0);
TEXT(two_bytes_decimal, "40", 0);
TEXT(decimal_min, "32", 0);
TEXT(decimal_max, "64", 0);
TEXT(decimal_65, "65", EINVAL);
TEXT(decimal_negative, "-1", EINVAL);
TEXT(five_bytes, "00040", EINVAL);
FIXTURE_VARIANT_ADD(payload, page) { .data = page, .len = sizeof(page), .error = EINVAL };
NATIVE(native_0, sig_zero, EINVAL);
NATIVE(native_9, sig_kill, EINVAL);
NATIVE(native_31, sig_31, EINVAL);
NATIVE(native_32, sig_min, 0);
NATIVE(native_64, sig_max, 0);
NATIVE(native_65, sig_65, EINVAL);
NATIVE(native_negative, sig_neg, EINVAL);

FIXTURE_SETUP(payload)
{
	if (!module_loaded())
		SKIP(return, "keyagent module not loaded");
	ASSERT_LT(0, keyctl_join_session_keyring(NULL));
}

FIXTURE_TEARDOWN(payload) {}

TEST_F(payload, add_key)
{
	long ret = add("keyagent", "user", variant->data, variant->len,
		       KEY_SPEC_SESSION_KEYRING);

	if (variant->error) {
		ASSERT_EQ(-variant->error, ret);
	} else {
		ASSERT_LT(0, ret);
	}
}

FIXTURE(description) {};

FIXTURE_VARIANT(description) {
	const char *desc;
	int error;
};

static char long_31[32], long_32[33], long_4095[4096];

FIXTURE_VARIANT_ADD(description, empty) { .desc = "", .error = EINVAL };
FIXTURE_VARIANT_ADD(description, keyagent) { .desc = "keyagent", .error = EINVAL };
FIXTURE_VARIANT_ADD(description, keyring) { .desc = "keyring", .error = EINVAL };
FIXTURE_VARIANT_ADD(description, internal) { .desc = ".request_key_auth", .error = EINVAL };
FIXTURE_VARIANT_ADD(description, tab) { .desc = "us\ter", .error = EINVAL };
FIXTURE_VARIANT_ADD(description, space) { .desc = "us er", .error = EINVAL };
FIXTURE_VARIANT_ADD(description, high_bit) { .desc = "us\xe9r", .error = EINVAL };
FIXTURE_VARIANT_ADD(description, len_31) { .desc = long_31, .error = 0 };
FIXTURE_VARIANT_ADD(description, len_32) { .desc = long_32, .error = EINVAL };
FIXTURE_VARIANT_ADD(description, len_4095) { .desc = long_4095, .error = EINVAL };
FIXTURE_VARIANT_ADD(description, user) { .desc = "user", .error = 0 };
FIXTURE_VARIANT_ADD(description, dns_resolver) { .desc = "dns_resolver", .error = 0 };
FIXTURE_VARIANT_ADD(description, cifs_spnego) { .desc = "cifs.spnego", .error = 0 };

FIXTURE_SETUP(description)
{
	if (!module_loaded())
		SKIP(return, "keyagent module not loaded");
	ASSERT_LT(0, keyctl_join_session_keyring(NULL));
	memset(long_31, 'a', sizeof(long_31) - 1);
	memset(long_32, 'a', sizeof(long_32) - 1);
	memset(long_4095, 'a', sizeof(long_4095) - 1);
}

FIXTURE_TEARDOWN(description) {}

TEST_F(description, add_key)
{
	long ret = add("keyagent", variant->desc, "40", 2, KEY_SPEC_SESSION_KEYRING);

	if (variant->error) {
		ASSERT_EQ(-variant->error, ret);
	} else {
		ASSERT_LT(0, ret);
	}
}

FIXTURE(ops) {
	key_serial_t key;
};

FIXTURE_SETUP(ops)
{
	if (!module_loaded())
		SKIP(return, "keyagent module not loaded");
	ASSERT_LT(0, keyctl_join_session_keyring(NULL));
	self->key = add("keyagent", "user", "41", 2, KEY_SPEC_SESSION_KEYRING);
	ASSERT_LT(0, self->key);
}

FIXTURE_TEARDOWN(ops) {}

/* read gives the signal back in decimal; the key is readable by its possessor. */
TEST_F(ops, read_signal)
{
	char buf[16];

	ASSERT_EQ(2, payload(self->key, buf, sizeof(buf)));
	ASSERT_STREQ("41", buf);
	ASSERT_EQ(2, keyctl_read(self->key, NULL, 0));
}

/*
 * keyctl update is refused (it gives no description to register for: EINVAL);
 * add_key again instead. Only the key's owner may register into an existing key.
 */
TEST_F(ops, update_refused)
{
	char buf[16];

	ASSERT_EQ(-1, keyctl_update(self->key, "42", 2));
	ASSERT_EQ(EINVAL, errno);
	ASSERT_EQ(0, keyctl_setperm(self->key, KEY_POS_ALL | KEY_USR_ALL));
	ASSERT_EQ(0, seteuid(1000));
	ASSERT_EQ(-EPERM, add("keyagent", "user", "43", 2, KEY_SPEC_SESSION_KEYRING));
	ASSERT_EQ(0, seteuid(0));
	ASSERT_EQ(2, payload(self->key, buf, sizeof(buf)));
	ASSERT_STREQ("41", buf);
}

/* A second add_key with the same description updates the key: its agent is replaced. */
TEST_F(ops, add_again_replaces)
{
	char buf[16];
	long second = add("keyagent", "user", "42", 2, KEY_SPEC_SESSION_KEYRING);

	ASSERT_EQ(self->key, second);
	ASSERT_EQ(second, keyctl_search(KEY_SPEC_SESSION_KEYRING, "keyagent", "user", 0));
	ASSERT_EQ(2, payload(second, buf, sizeof(buf)));
	ASSERT_STREQ("42", buf);
}

TEST_F(ops, revoke)
{
	ASSERT_EQ(0, keyctl_revoke(self->key));
	ASSERT_EQ(-1, keyctl_read(self->key, NULL, 0));
	ASSERT_EQ(EKEYREVOKED, errno);
}

TEST_F(ops, invalidate)
{
	ASSERT_EQ(0, keyctl_invalidate(self->key));
	ASSERT_TRUE(wait_for(key_gone(self->key), WAIT_MS));
}

TEST_F(ops, setperm)
{
	ASSERT_EQ(0, keyctl_setperm(self->key, KEY_POS_ALL | KEY_USR_VIEW));
	ASSERT_EQ(0, keyctl_setperm(self->key, KEY_POS_VIEW));
	ASSERT_EQ(-1, keyctl_read(self->key, NULL, 0));
	ASSERT_EQ(EACCES, errno);
}

/* /proc/keys shows the type served, pid, signal, liveness and counts. */
TEST_F(ops, describe_in_proc_keys)
{
	char want[128], line[512];
	int found = 0;
	FILE *f;

	snprintf(want, sizeof(want), "keyagent  user: pid %d sig 41 alive sent 0 pending 0",
		 getpid());
	f = fopen("/proc/keys", "r");
	ASSERT_NE(NULL, f);
	while (fgets(line, sizeof(line), f))
		if (strtoul(line, NULL, 16) == (unsigned long)self->key) {
			found = 1;
			ASSERT_NE(NULL, strstr(line, want)) TH_LOG("line: %s", line);
		}
	fclose(f);
	ASSERT_TRUE(found);
}

/* Registering creates the agent's process keyring, which receives authorisation keys. */
TEST_F(ops, process_keyring_created)
{
	ASSERT_LT(0, keyctl_get_keyring_ID(KEY_SPEC_PROCESS_KEYRING, 0));
}

/* A construction of a keyagent key itself is never routed to an agent. */
TEST_F(ops, request_keyagent_key)
{
	ASSERT_EQ(-ENOKEY, request("keyagent", "nothing", NULL, 0));
}

/* The module's keyrings ("_keyagent...") the caller can see in /proc/keys. */
static int module_keyrings(void)
{
	char line[512];
	FILE *f = fopen("/proc/keys", "r");
	int n = 0;

	while (f && fgets(line, sizeof(line), f))
		n += strstr(line, " keyring ") && strstr(line, " _keyagent");
	if (f)
		fclose(f);
	return n;
}

/*
 * Keys of @uid in /proc/key-users: all of them (nkeys) or, with @quota, those
 * charged to its quota (qnkeys). -1 if the user has none.
 */
static long user_keys(uid_t uid, int quota)
{
	long n = -1, u, usage, nkeys, nikeys, qnkeys;
	char line[256];
	FILE *f = fopen("/proc/key-users", "r");

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, " %ld: %ld %ld/%ld %ld/", &u, &usage, &nkeys, &nikeys,
			   &qnkeys) == 5 && u == (long)uid)
			n = quota ? qnkeys : nkeys;
	if (f)
		fclose(f);
	return n;
}

FIXTURE(leaks) {
	long maxkeys;
};

FIXTURE_SETUP(leaks)
{
	if (!module_loaded())
		SKIP(return, "keyagent module not loaded");
	ASSERT_LT(0, keyctl_join_session_keyring(NULL));
	self->maxkeys = read_number("/proc/sys/kernel/keys/maxkeys");
	ASSERT_LT(0, self->maxkeys);
}

FIXTURE_TEARDOWN(leaks)
{
	char value[32];

	snprintf(value, sizeof(value), "%ld", self->maxkeys);
	if (seteuid(0) == 0)
		write_file("/proc/sys/kernel/keys/maxkeys", value);
}

/* A refused registration has no side effect: no module keyring is left behind. */
TEST_F(leaks, refused_registrations_leave_no_keyring)
{
	int before = module_keyrings(), i;

	for (i = 0; i < 100; i++) {
		ASSERT_EQ(-EINVAL, add("keyagent", ".bad", "40", 2, KEY_SPEC_SESSION_KEYRING));
		ASSERT_EQ(-EINVAL, add("keyagent", "keyring", "40", 2, KEY_SPEC_SESSION_KEYRING));
		ASSERT_EQ(-EINVAL, add("keyagent", "user", "x", 1, KEY_SPEC_SESSION_KEYRING));
	}
	ASSERT_GE(before, module_keyrings());
}

/* Registrations that replace each other leave the keyring of the last one only. */
TEST_F_TIMEOUT(leaks, replaced_registrations_leave_one_keyring, 300)
{
	int before = module_keyrings(), i;

	for (i = 0; i < 100; i++)
		ASSERT_LT(0, add("keyagent", "user", "40", 2, KEY_SPEC_SESSION_KEYRING));
	ASSERT_TRUE(wait_for(module_keyrings() <= before + 1, WAIT_MS))
		TH_LOG("%d module keyrings, %d before", module_keyrings(), before);
}

/* A registration refused for the key quota (after parsing) leaves nothing either. */
TEST_F_TIMEOUT(leaks, over_quota_registrations_leave_nothing, 300)
{
	char value[32];
	long before;
	int i;

	ASSERT_EQ(0, setresgid(1000, 1000, 0));
	ASSERT_EQ(0, setresuid(1000, 1000, 0));
	ASSERT_LT(0, keyctl_join_session_keyring(NULL));
	ASSERT_LT(0, keyctl_get_keyring_ID(KEY_SPEC_PROCESS_KEYRING, 1));
	before = user_keys(1000, 0);
	ASSERT_LT(0, before);
	/* Root sets the quota to what the user has. */
	ASSERT_EQ(0, seteuid(0));
	snprintf(value, sizeof(value), "%ld", user_keys(1000, 1));
	ASSERT_EQ(0, write_file("/proc/sys/kernel/keys/maxkeys", value));
	ASSERT_EQ(0, seteuid(1000));
	for (i = 0; i < 50; i++)
		ASSERT_EQ(-EDQUOT, add("keyagent", "user", "40", 2, KEY_SPEC_SESSION_KEYRING));
	ASSERT_EQ(0, seteuid(0));
	snprintf(value, sizeof(value), "%ld", self->maxkeys);
	ASSERT_EQ(0, write_file("/proc/sys/kernel/keys/maxkeys", value));
	ASSERT_TRUE(wait_for(user_keys(1000, 0) == before, WAIT_MS))
		TH_LOG("uid 1000 has %ld keys, %ld before", user_keys(1000, 0), before);
}

TEST_HARNESS_MAIN
