// SPDX-License-Identifier: GPL-2.0
/*
 * Many requesters against one agent: every construction is answered exactly
 * once and none hangs.
 */
#include "kselftest_harness.h"
#include "keyagent_util.h"

#define REQUESTERS 8
#define REQUESTS 200
#define LOG_PATH "/tmp/concurrency-agent.log"

FIXTURE(load) {
	struct agent agent;
};

FIXTURE_SETUP(load)
{
	if (!module_loaded())
		SKIP(return, "keyagent module not loaded");
	ASSERT_LT(0, keyctl_join_session_keyring(NULL));
	unlink(LOG_PATH);
	self->agent.pid = 0;
}

FIXTURE_TEARDOWN(load)
{
	agent_stop(&self->agent);
	unlink(LOG_PATH);
}

/* Each requester checks every key it gets; its exit status counts the bad ones. */
static int requester(int id)
{
	char desc[32], callout[32], want[48], buf[64];
	int bad = 0, i;
	long key;

	for (i = 0; i < REQUESTS; i++) {
		snprintf(desc, sizeof(desc), "load-%d-%d", id, i);
		snprintf(callout, sizeof(callout), "c%d.%d", id, i);
		snprintf(want, sizeof(want), "agent:%s", callout);
		key = request("user", desc, callout, 0);
		if (key < 0 || payload(key, buf, sizeof(buf)) < 0 || strcmp(buf, want)) {
			fprintf(stderr, "requester %d: %s: %ld\n", id, desc, key);
			bad++;
		}
	}
	return bad > 255 ? 255 : bad;
}

TEST_F_TIMEOUT(load, eight_requesters, 1200)
{
	const char *args[] = { "-l", LOG_PATH, NULL };
	long routed = stat_read("routed"), start = now_ms();
	pid_t pids[REQUESTERS];
	int i, status;

	ASSERT_EQ(0, agent_start(&self->agent, args));
	for (i = 0; i < REQUESTERS; i++) {
		pids[i] = fork();
		ASSERT_LE(0, pids[i]);
		if (pids[i] == 0)
			_exit(requester(i));
	}
	for (i = 0; i < REQUESTERS; i++) {
		ASSERT_EQ(pids[i], waitpid(pids[i], &status, 0));
		ASSERT_TRUE(WIFEXITED(status));
		EXPECT_EQ(0, WEXITSTATUS(status));
	}
	TH_LOG("%d constructions in %ld ms", REQUESTERS * REQUESTS, now_ms() - start);
	/* Exactly one signal per construction. */
	ASSERT_EQ(REQUESTERS * REQUESTS, count_lines(LOG_PATH));
	ASSERT_EQ(routed + REQUESTERS * REQUESTS, stat_read("routed"));
}

TEST_HARNESS_MAIN
