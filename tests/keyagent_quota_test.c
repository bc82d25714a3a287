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
TEST_F(quota, constructions_leave_no_quota)
{
	key_serial_t dest;
	long before, after, key;
	char desc[32];
	int i;

	ASSERT_EQ(0, agent_start(&self->agent, NULL));
	dest = add_key("keyring", "quota-dest", NULL, 0, KEY_SPEC_SESSION_KEYRING);
	ASSERT_LT(0, dest);
	before = settled_key_users(0, KU_QNBYTES);
	for (i = 0; i < REQUESTS; i++) {
		snprintf(desc, sizeof(desc), "quota-%d", i);
		key = request("user", desc, "q", dest);
		ASSERT_LT(0, key);
	}
	/* The constructed keys go; what remains is what the agent path kept. */
	ASSERT_EQ(0, keyctl_clear(dest));
	wait_for(key_users(0, KU_QNBYTES) == before, WAIT_MS);
	after = key_users(0, KU_QNBYTES);
	TH_LOG("quota bytes of uid 0: %ld before, %ld after %d constructions", before, after,
	       REQUESTS);
	ASSERT_EQ(before, after);
}

TEST_HARNESS_MAIN
