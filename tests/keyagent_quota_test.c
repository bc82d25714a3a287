// SPDX-License-Identifier: GPL-2.0
/*
 * Key quota: handing constructions to an agent costs its user nothing that
 * lasts. Every authorisation key linked for the agent is unlinked again, and
 * the garbage collector removing a dead link must not leave its quota behind
 * (it does not give it back), so a long-lived, unprivileged agent keeps
 * working.
 */
#include "kselftest_harness.h"
#include "keyagent_util.h"

#define REQUESTS 300

/* qnbytes of @uid in /proc/key-users, -1 if not found. */
static long quota_bytes(long want)
{
	FILE *f = fopen("/proc/key-users", "r");
	long uid, usage, n, ni, qn, qmax, qb, qbmax, bytes = -1;
	char line[256];

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, " %ld: %ld %ld/%ld %ld/%ld %ld/%ld", &uid, &usage, &n, &ni,
			   &qn, &qmax, &qb, &qbmax) == 8 && uid == want)
			bytes = qb;
	fclose(f);
	return bytes;
}

/* Waits until @uid's quota bytes stop changing (the key collector is idle). */
static long settled_quota(long uid)
{
	long last = quota_bytes(uid), now;
	int stable = 0, i;

	for (i = 0; i < 100 && stable < 15; i++) {
		usleep(100000);
		now = quota_bytes(uid);
		stable = now == last ? stable + 1 : 0;
		last = now;
	}
	return last;
}

FIXTURE(quota) {
	struct agent agent;
};

FIXTURE_SETUP(quota)
{
	if (!module_loaded())
		SKIP(return, "keyagent module not loaded");
	ASSERT_LT(0, keyctl_join_session_keyring(NULL));
	self->agent.pid = 0;
}

FIXTURE_TEARDOWN(quota)
{
	agent_stop(&self->agent);
}

/* The agent's user (root here) ends where it started while the agent lives on. */
TEST_F_TIMEOUT(quota, constructions_leave_no_quota, 120)
{
	key_serial_t dest;
	long before, after, key;
	char desc[32];
	int i;

	ASSERT_EQ(0, agent_start(&self->agent, NULL));
	dest = add_key("keyring", "quota-dest", NULL, 0, KEY_SPEC_SESSION_KEYRING);
	ASSERT_LT(0, dest);
	before = settled_quota(0);
	for (i = 0; i < REQUESTS; i++) {
		snprintf(desc, sizeof(desc), "quota-%d", i);
		key = request("user", desc, "q", dest);
		ASSERT_LT(0, key);
	}
	/* The constructed keys go; what remains is what the agent path kept. */
	ASSERT_EQ(0, keyctl_clear(dest));
	after = settled_quota(0);
	TH_LOG("quota bytes of uid 0: %ld before, %ld after %d constructions", before, after,
	       REQUESTS);
	ASSERT_EQ(before, after);
}

TEST_HARNESS_MAIN
