// SPDX-License-Identifier: GPL-2.0
/*
 * Loading and unloading the module while requests run: every requester
 * finishes with a key or a documented error, nothing hangs, and the module
 * reloads each time.
 */
#include <sys/mman.h>

#include "kselftest_harness.h"
#include "keyagent_util.h"

#define CYCLES 20
#define REQUESTERS 3

/* Requests until told to stop; exits 0 if every result was an expected one. */
static int requester(int id, volatile int *stop)
{
	char desc[48], buf[64];
	long key;
	int i;

	for (i = 0; !*stop; i++) {
		snprintf(desc, sizeof(desc), "unload-%d-%d", id, i);
		key = request("user", desc, "u", 0);
		if (key > 0) {
			if (payload(key, buf, sizeof(buf)) < 0)
				return 1;
			if (strcmp(buf, "agent:u") && strcmp(buf, "request-key:u"))
				return 2;
		} else if (key != -ECANCELED && key != -EOWNERDEAD && key != -ENOKEY) {
			fprintf(stderr, "requester %d: %s: %s\n", id, desc, strerror(-key));
			return 3;
		}
	}
	return 0;
}

FIXTURE(unload) {
	struct agent agent;
};

FIXTURE_SETUP(unload)
{
	if (!module_loaded())
		SKIP(return, "keyagent module not loaded");
	ASSERT_LT(0, keyctl_join_session_keyring(NULL));
	self->agent.pid = 0;
}

FIXTURE_TEARDOWN(unload)
{
	agent_stop(&self->agent);
	if (!module_loaded())
		module_load("");
}

TEST_F_TIMEOUT(unload, cycles_under_load, 1200)
{
	volatile int *stop = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
				  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	pid_t pids[REQUESTERS];
	int i, status;
	long routed;

	ASSERT_NE(MAP_FAILED, stop);
	*stop = 0;
	for (i = 0; i < REQUESTERS; i++) {
		pids[i] = fork();
		ASSERT_LE(0, pids[i]);
		if (pids[i] == 0)
			_exit(requester(i, stop));
	}
	for (i = 0; i < CYCLES; i++) {
		if (!module_loaded())
			ASSERT_EQ(0, module_load(""));
		routed = stat_read("routed");
		ASSERT_EQ(0, agent_start(&self->agent, NULL));
		/* Unload once requests go through the agent. */
		ASSERT_TRUE(wait_for(stat_read("routed") > routed, WAIT_MS))
			TH_LOG("cycle %d", i);
		ASSERT_EQ(0, module_unload(WAIT_MS)) TH_LOG("cycle %d", i);
		agent_stop(&self->agent);
	}
	ASSERT_EQ(0, module_load(""));
	*stop = 1;
	for (i = 0; i < REQUESTERS; i++) {
		/* A requester may be in a fallback construction. */
		ASSERT_TRUE(wait_for(waitpid(pids[i], &status, WNOHANG) == pids[i], WAIT_MS));
		ASSERT_TRUE(WIFEXITED(status));
		EXPECT_EQ(0, WEXITSTATUS(status));
	}
}

TEST_HARNESS_MAIN
