// SPDX-License-Identifier: GPL-2.0
/*
 * Agents that die, never answer, cannot be signalled or are overloaded: each
 * construction ends with its documented error, in bounded time.
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
	ASSERT_TRUE(wait_for(key_gone(agent_key), 5000));
}

/* An agent killed while holding requests: they fail with EOWNERDEAD within about 1 s. */
TEST_F(fault, agent_killed_holding_requests)
{
	const char *args[] = { "-i", NULL };
	long routed = stat_read("routed"), killed_at;
	pid_t requester[3];
	int i;

	ASSERT_EQ(0, agent_start(&self->agent, args));
	for (i = 0; i < 3; i++)
		requester[i] = request_in_child(i == 0 ? "fault-kill-0" :
						i == 1 ? "fault-kill-1" : "fault-kill-2", "x");
	ASSERT_TRUE(wait_for(stat_read("routed") == routed + 3, 10000));

	killed_at = now_ms();
	agent_stop(&self->agent);
	for (i = 0; i < 3; i++)
		ASSERT_EQ(EOWNERDEAD, wait_child(requester[i], 5000));
	TH_LOG("requesters released %ld ms after the kill", now_ms() - killed_at);
	ASSERT_GT(1500, now_ms() - killed_at);
}

/* An agent that dies on receiving the signal. */
TEST_F(fault, agent_dies_on_signal)
{
	const char *args[] = { "-d", NULL };
	long start = now_ms();

	ASSERT_EQ(0, agent_start(&self->agent, args));
	ASSERT_EQ(-EOWNERDEAD, request("user", "fault-die", "x", 0));
	ASSERT_GT(5000, now_ms() - start);
}

/* An agent that never answers: ETIMEDOUT after request_timeout. */
TEST_F_TIMEOUT(fault, agent_never_answers, 60)
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
	ASSERT_GT(8000, elapsed);
	ASSERT_EQ(timeouts + 1, stat_read("timeouts"));
}

/* The timeout applies to constructions already pending when it is lowered. */
TEST_F_TIMEOUT(fault, timeout_lowered_while_pending, 60)
{
	const char *args[] = { "-i", NULL };
	long routed = stat_read("routed");
	pid_t requester;

	ASSERT_EQ(0, agent_start(&self->agent, args));
	requester = request_in_child("fault-lowered", "x");
	ASSERT_TRUE(wait_for(stat_read("routed") == routed + 1, 10000));
	ASSERT_EQ(0, param_set("request_timeout", "1"));
	ASSERT_EQ(ETIMEDOUT, wait_child(requester, 10000));
}

/* A slow agent still answers within the timeout. */
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
	ASSERT_TRUE(wait_for(stat_read("routed") == routed + 1, 10000));
	ASSERT_EQ(-EAGAIN, request("user", "fault-queue-1", "x", 0));
	ASSERT_EQ(failures + 1, stat_read("signal_failures"));
	agent_stop(&self->agent);
	ASSERT_EQ(EOWNERDEAD, wait_child(first, 5000));
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
	ASSERT_TRUE(wait_for(stat_read("routed") == routed + 2, 10000));
	ASSERT_EQ(-EBUSY, request("user", "fault-limit-2", "x", 0));
	ASSERT_EQ(busy + 1, stat_read("busy"));
	agent_stop(&self->agent);
	ASSERT_EQ(EOWNERDEAD, wait_child(first, 5000));
	ASSERT_EQ(EOWNERDEAD, wait_child(second, 5000));
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
	ASSERT_TRUE(wait_for(stat_read("routed") == routed + 1, 10000));
	ASSERT_TRUE(wait_for(count_lines("/tmp/fault-auth.log") == 1, 5000));
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
	ASSERT_EQ(EOWNERDEAD, wait_child(requester, 5000));
	unlink("/tmp/fault-auth.log");
}

TEST_HARNESS_MAIN
