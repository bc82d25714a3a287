// SPDX-License-Identifier: GPL-2.0
/*
 * Agents that die, never answer, cannot be signalled or are overloaded: each
 * construction ends with its documented error. request_timeout is an hour
 * unless a test lowers it, so the errno tells how a construction ended (the
 * agent's death, EOWNERDEAD, is not the timeout, ETIMEDOUT), and one that
 * does not end holds its test until the harness's time limit: no test
 * measures how fast anything happens.
 */
#include <sys/resource.h>

#include "kselftest_harness.h"
#include "keyagent_util.h"

FIXTURE(fault) {
	struct agent agent;
};

FIXTURE_SETUP(fault)
{
	if (!module_loaded())
		SKIP(return, "keyagent module not loaded");
	ASSERT_LT(0, keyctl_join_session_keyring(NULL));
	self->agent.pid = 0;
	ASSERT_EQ(0, param_set("request_timeout", FAR_TIMEOUT));
}

FIXTURE_TEARDOWN(fault)
{
	agent_stop(&self->agent);
	param_set("request_timeout", "30");
	param_set("max_pending", "128");
}

/* A dead agent's requests go to /sbin/request-key, and its key is invalidated. */
TEST_F(fault, agent_dead_before_request)
{
	long key, dead = stat_read("dead_agents");
	key_serial_t agent_key;
	char buf[64];

	ASSERT_EQ(0, agent_start(&self->agent, NULL));
	agent_key = self->agent.key;
	agent_stop(&self->agent);

	key = request("user", "fault-dead", "cb", 0);
	ASSERT_LT(0, key);
	ASSERT_LT(0, payload(key, buf, sizeof(buf)));
	ASSERT_STREQ("request-key:cb", buf);
	ASSERT_EQ(dead + 1, stat_read("dead_agents"));
	ASSERT_TRUE(wait_for(key_gone(agent_key), WAIT_MS));
}

/* An agent killed while holding requests: they fail with EOWNERDEAD, not by the timeout. */
TEST_F(fault, agent_killed_holding_requests)
{
	const char *args[] = { "-i", NULL };
	long routed = stat_read("routed");
	pid_t requester[3];
	int i;

	ASSERT_EQ(0, agent_start(&self->agent, args));
	for (i = 0; i < 3; i++)
		requester[i] = request_in_child(i == 0 ? "fault-kill-0" :
						i == 1 ? "fault-kill-1" : "fault-kill-2", "x");
	ASSERT_TRUE(wait_for(stat_read("routed") == routed + 3, WAIT_MS));

	agent_stop(&self->agent);
	for (i = 0; i < 3; i++)
		ASSERT_EQ(EOWNERDEAD, wait_child(requester[i], WAIT_MS));
}

/* An agent that dies on receiving the signal. */
TEST_F(fault, agent_dies_on_signal)
{
	const char *args[] = { "-d", NULL };

	ASSERT_EQ(0, agent_start(&self->agent, args));
	ASSERT_EQ(-EOWNERDEAD, request("user", "fault-die", "x", 0));
}

/*
 * An agent that never answers: ETIMEDOUT once request_timeout has passed,
 * never before (with the fixture's hour, a lowered timeout that did not
 * apply would hold the test until its time limit).
 */
TEST_F(fault, agent_never_answers)
{
	const char *args[] = { "-i", NULL };
	long start, elapsed, timeouts = stat_read("timeouts");

	ASSERT_EQ(0, param_set("request_timeout", "2"));
	ASSERT_EQ(0, agent_start(&self->agent, args));
	start = now_ms();
	ASSERT_EQ(-ETIMEDOUT, request("user", "fault-timeout", "x", 0));
	elapsed = now_ms() - start;
	TH_LOG("timed out after %ld ms", elapsed);
	ASSERT_LE(2000, elapsed);
	/* Counted by the reaper just after it woke the requester. */
	ASSERT_TRUE(wait_for(stat_read("timeouts") == timeouts + 1, WAIT_MS));
}

/* The timeout applies to constructions already pending when it is lowered. */
TEST_F(fault, timeout_lowered_while_pending)
{
	const char *args[] = { "-i", NULL };
	long routed = stat_read("routed");
	pid_t requester;

	ASSERT_EQ(0, agent_start(&self->agent, args));
	requester = request_in_child("fault-lowered", "x");
	ASSERT_TRUE(wait_for(stat_read("routed") == routed + 1, WAIT_MS));
	ASSERT_EQ(0, param_set("request_timeout", "1"));
	ASSERT_EQ(ETIMEDOUT, wait_child(requester, WAIT_MS));
}

/* A slow agent still answers: the requester waits for it. */
TEST_F(fault, slow_agent_answers)
{
	const char *args[] = { "-w", "500", NULL };
	long start = now_ms(), key;
	char buf[64];

	ASSERT_EQ(0, agent_start(&self->agent, args));
	key = request("user", "fault-slow", "s", 0);
	ASSERT_LT(0, key);
	ASSERT_LE(500, now_ms() - start);
	ASSERT_LT(0, payload(key, buf, sizeof(buf)));
	ASSERT_STREQ("agent:s", buf);
}

static void one_pending_signal(void)
{
	struct rlimit rl = { 1, 1 };

	setrlimit(RLIMIT_SIGPENDING, &rl);
}

/* The agent's signal queue is full (RLIMIT_SIGPENDING): EAGAIN at once. */
TEST_F(fault, signal_queue_full)
{
	const char *args[] = { "-b", NULL };
	long routed = stat_read("routed"), failures = stat_read("signal_failures");
	pid_t first;

	ASSERT_EQ(0, agent_start_with(&self->agent, args, one_pending_signal));
	first = request_in_child("fault-queue-0", "x");
	ASSERT_TRUE(wait_for(stat_read("routed") == routed + 1, WAIT_MS));
	ASSERT_EQ(-EAGAIN, request("user", "fault-queue-1", "x", 0));
	ASSERT_EQ(failures + 1, stat_read("signal_failures"));
	agent_stop(&self->agent);
	ASSERT_EQ(EOWNERDEAD, wait_child(first, WAIT_MS));
}

/* More than max_pending constructions for one agent: EBUSY at once. */
TEST_F(fault, pending_limit)
{
	const char *args[] = { "-i", NULL };
	long routed = stat_read("routed"), busy = stat_read("busy");
	pid_t first, second;

	ASSERT_EQ(0, param_set("max_pending", "2"));
	ASSERT_EQ(0, agent_start(&self->agent, args));
	first = request_in_child("fault-limit-0", "x");
	second = request_in_child("fault-limit-1", "x");
	ASSERT_TRUE(wait_for(stat_read("routed") == routed + 2, WAIT_MS));
	ASSERT_EQ(-EBUSY, request("user", "fault-limit-2", "x", 0));
	ASSERT_EQ(busy + 1, stat_read("busy"));
	agent_stop(&self->agent);
	ASSERT_EQ(EOWNERDEAD, wait_child(first, WAIT_MS));
	ASSERT_EQ(EOWNERDEAD, wait_child(second, WAIT_MS));
}

/* Nobody but the holder of the authorisation key may answer. */
TEST_F(fault, instantiate_without_authority)
{
	const char *args[] = { "-i", "-l", "/tmp/fault-auth.log", NULL };
	long routed = stat_read("routed");
	key_serial_t target;
	pid_t requester;
	FILE *f;

	unlink("/tmp/fault-auth.log");
	ASSERT_EQ(0, agent_start(&self->agent, args));
	requester = request_in_child("fault-noauth", "x");
	ASSERT_TRUE(wait_for(stat_read("routed") == routed + 1, WAIT_MS));
	ASSERT_TRUE(wait_for(count_lines("/tmp/fault-auth.log") == 1, WAIT_MS));
	f = fopen("/tmp/fault-auth.log", "r");
	ASSERT_NE(NULL, f);
	ASSERT_EQ(1, fscanf(f, "%d", &target));
	fclose(f);

	ASSERT_EQ(-1, keyctl_instantiate(target, "forged", 6, 0));
	ASSERT_EQ(EPERM, errno);
	/* Its authorisation key is not in our keyrings. */
	ASSERT_EQ(-1, keyctl_assume_authority(target));
	ASSERT_EQ(ENOKEY, errno);
	agent_stop(&self->agent);
	ASSERT_EQ(EOWNERDEAD, wait_child(requester, WAIT_MS));
	unlink("/tmp/fault-auth.log");
}

TEST_HARNESS_MAIN
