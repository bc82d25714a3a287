// SPDX-License-Identifier: GPL-2.0
/*
 * The lifetime of keyagent keys: once its agent has exited and nothing links
 * it any more, an agent key is garbage collected like any other key, wherever
 * it was registered, and takes nothing with it into the quota.
 */
#include "kselftest_harness.h"
#include "keyagent_util.h"

/* Where the child registers, and what it links first. */
enum setup {
	IN_SESSION,		/* add_key(..., @s) in a new session */
	IN_THREAD,		/* add_key(..., @t) */
	IN_PROCESS,		/* add_key(..., @p) */
	SESSION_LINKED_FROM_PROCESS,	/* @s linked into @p, add_key(..., @s) */
};

/* Registers an agent as @how says in a child that then exits; returns its key. */
static key_serial_t register_and_exit(enum setup how)
{
	int fds[2];
	key_serial_t key = -1;
	pid_t pid;

	if (pipe(fds) < 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		key_serial_t dest = KEY_SPEC_SESSION_KEYRING;

		close(fds[0]);
		if (keyctl_join_session_keyring(NULL) < 0)
			_exit(1);
		switch (how) {
		case IN_SESSION:
			break;
		case IN_THREAD:
			dest = KEY_SPEC_THREAD_KEYRING;
			break;
		case IN_PROCESS:
			dest = KEY_SPEC_PROCESS_KEYRING;
			break;
		case SESSION_LINKED_FROM_PROCESS:
			if (keyctl_link(KEY_SPEC_SESSION_KEYRING, KEY_SPEC_PROCESS_KEYRING) < 0)
				_exit(2);
			break;
		}
		key = add("keyagent", "user", "40", 2, dest);
		if (write(fds[1], &key, sizeof(key)) != sizeof(key))
			_exit(3);
		_exit(0);
	}
	close(fds[1]);
	if (read(fds[0], &key, sizeof(key)) != sizeof(key))
		key = -1;
	close(fds[0]);
	waitpid(pid, NULL, 0);
	return key;
}

FIXTURE(lifetime) {
	long baseline;
};

FIXTURE_VARIANT(lifetime) {
	enum setup how;
};

FIXTURE_VARIANT_ADD(lifetime, session) { .how = IN_SESSION };
FIXTURE_VARIANT_ADD(lifetime, thread_keyring) { .how = IN_THREAD };
FIXTURE_VARIANT_ADD(lifetime, process_keyring) { .how = IN_PROCESS };
FIXTURE_VARIANT_ADD(lifetime, session_linked_from_process_keyring) {
	.how = SESSION_LINKED_FROM_PROCESS
};

FIXTURE_SETUP(lifetime)
{
	if (!module_loaded())
		SKIP(return, "keyagent module not loaded");
	self->baseline = settled_key_users(0, KU_NKEYS);
	ASSERT_LT(0, self->baseline);
}

FIXTURE_TEARDOWN(lifetime) {}

/* The agent exits: its key, its keyrings and its quota go away. */
TEST_F(lifetime, collected_after_exit)
{
	key_serial_t key = register_and_exit(variant->how);
	long nkeys;

	ASSERT_LT(0, key);
	if (!wait_for(key_gone(key), WAIT_MS)) {
		char desc[256] = "";

		keyctl_describe(key, desc, sizeof(desc));
		TH_LOG("agent key %d still exists after its agent exited: %s", key, desc);
	}
	EXPECT_TRUE(key_gone(key));
	wait_for(key_users(0, KU_NKEYS) == self->baseline, WAIT_MS);
	nkeys = key_users(0, KU_NKEYS);
	TH_LOG("root's keys: %ld before, %ld after", self->baseline, nkeys);
	EXPECT_EQ(self->baseline, nkeys);
}

TEST_HARNESS_MAIN
