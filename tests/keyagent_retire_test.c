// SPDX-License-Identifier: GPL-2.0
/*
 * A dead agent's key is invalidated when a request finds it (README: "An
 * agent found dead when a request arrives is skipped ... and its keyagent key
 * is invalidated"), even if queueing it for invalidation failed the first
 * time: the next request that finds it must queue it again.
 *
 * The queueing allocation (GFP_ATOMIC, in the request_key hook) is failed
 * with failslab's fail-nth, limited by the stack trace filter to allocations
 * made under the module's code: it is the first such allocation of the
 * requesting task.
 */
#include "kselftest_harness.h"
#include "keyagent_util.h"

#define FAILSLAB "/sys/kernel/debug/failslab/"

static int knob(const char *name, const char *value)
{
	char path[128];

	snprintf(path, sizeof(path), FAILSLAB "%s", name);
	return write_file(path, value);
}

static int knob_ulong(const char *name, unsigned long value)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%#lx", value);
	return knob(name, buf);
}

static void failslab_off(void)
{
	knob("ignore-gfp-wait", "Y");
	knob_ulong("require-start", 0);
	knob_ulong("require-end", ~0UL);
	knob("verbose", "2");
}

/*
 * request_key() in a child whose first allocation under the module fails.
 * Returns the key, or -errno; *@injected tells whether the failure happened.
 */
static long request_failing_first_allocation(const char *desc, int *injected)
{
	struct { long ret, left; } r = { -EIO, -1 };
	int fds[2];
	pid_t pid;

	if (pipe(fds) < 0)
		return -errno;
	pid = fork();
	if (pid == 0) {
		close(fds[0]);
		if (write_file("/proc/thread-self/fail-nth", "1") < 0)
			_exit(1);
		r.ret = request("user", desc, "x", 0);
		r.left = read_number("/proc/thread-self/fail-nth");
		write_file("/proc/thread-self/fail-nth", "0");
		if (write(fds[1], &r, sizeof(r)) != sizeof(r))
			_exit(1);
		_exit(0);
	}
	close(fds[1]);
	if (read(fds[0], &r, sizeof(r)) != sizeof(r))
		r.ret = -EIO;
	close(fds[0]);
	waitpid(pid, NULL, 0);
	*injected = r.left == 0;
	return r.ret;
}

FIXTURE(retire) {
	struct agent agent;
};

FIXTURE_SETUP(retire)
{
	self->agent.pid = 0;
	if (!module_loaded())
		SKIP(return, "keyagent module not loaded");
	if (access(FAILSLAB "require-start", W_OK) || access("/proc/thread-self/fail-nth", W_OK))
		SKIP(return, "failslab with a stack trace filter, or fail-nth, not available");
	ASSERT_LT(0, keyctl_join_session_keyring(NULL));
}

FIXTURE_TEARDOWN(retire)
{
	failslab_off();
	agent_stop(&self->agent);
}

TEST_F(retire, after_failed_allocation)
{
	unsigned long start, end;
	key_serial_t agent_key;
	int injected = 0;
	long key;
	char buf[64];

	ASSERT_EQ(0, agent_start(&self->agent, NULL));
	agent_key = self->agent.key;
	agent_stop(&self->agent);

	ASSERT_EQ(0, module_range(&start, &end));
	ASSERT_EQ(0, knob_ulong("require-start", start));
	ASSERT_EQ(0, knob_ulong("require-end", end));
	ASSERT_EQ(0, knob("ignore-gfp-wait", "N"));
	/* With a stack trace in the log, which the log scan must not take for a splat. */
	ASSERT_EQ(0, knob("verbose", "2"));
	key = request_failing_first_allocation("retire-1", &injected);
	failslab_off();
	ASSERT_TRUE(injected);
	/* The request still goes to /sbin/request-key. */
	ASSERT_LT(0, key);
	ASSERT_LT(0, payload(key, buf, sizeof(buf)));
	ASSERT_STREQ("request-key:x", buf);

	/* Another request finds the dead agent again, with nothing failing. */
	key = request("user", "retire-2", "x", 0);
	ASSERT_LT(0, key);
	ASSERT_LT(0, payload(key, buf, sizeof(buf)));
	ASSERT_STREQ("request-key:x", buf);
	EXPECT_TRUE(wait_for(key_gone(agent_key), WAIT_MS)) {
		char desc[256] = "";

		keyctl_describe(agent_key, desc, sizeof(desc));
		TH_LOG("the dead agent's key %d is still there: %s", agent_key, desc);
	}
}

TEST_HARNESS_MAIN
