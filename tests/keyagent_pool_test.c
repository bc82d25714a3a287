// SPDX-License-Identifier: GPL-2.0
/*
 * Pools: several agents, channel or signal, serving one type through one
 * keyagent key. A registration with "pool" joins the key's agents, one
 * without replaces them; each construction goes to the live agent with the
 * fewest pending, never to the requester; what a dead channel had not read
 * moves to another channel of the pool.
 *
 * Requesters are children that hold no channel (requester_start()); their
 * exit status is the errno request_key() gave them, 0 for a key with the
 * expected payload. The constructions' own timeout is an hour.
 */
#include <sys/wait.h>

#include "kselftest_harness.h"
#include "keyagent_util.h"

static char store[4 * KEYAGENT_REQUEST_MAX];
static char answers[4096];

FIXTURE(pool) {
	int a, b;		/* two channels */
	key_serial_t key;	/* the key both serve "user" with */
	pid_t pids[8];
	int npids;
	struct agent agent;
};

FIXTURE_SETUP(pool)
{
	self->a = self->b = -1;
	self->npids = 0;
	self->agent.pid = 0;
	if (!module_loaded())
		SKIP(return, "keyagent module not loaded");
	ASSERT_LT(0, keyctl_join_session_keyring(NULL));
	ASSERT_EQ(0, param_set("request_timeout", FAR_TIMEOUT));
	self->a = chan_open(0);
	self->b = chan_open(0);
	ASSERT_LE(0, self->a);
	ASSERT_LE(0, self->b);
	self->key = chan_register(self->a, "user", NULL, KEY_SPEC_SESSION_KEYRING);
	ASSERT_LT(0, self->key);
	/* The second joins the first: the same key. */
	ASSERT_EQ(self->key, chan_register(self->b, "user", " pool", KEY_SPEC_SESSION_KEYRING));
}

FIXTURE_TEARDOWN(pool)
{
	int i;

	if (self->a >= 0)
		close(self->a);
	if (self->b >= 0)
		close(self->b);
	for (i = 0; i < self->npids; i++)
		if (waitpid(self->pids[i], NULL, WNOHANG) == 0) {
			kill(self->pids[i], SIGKILL);
			waitpid(self->pids[i], NULL, 0);
		}
	agent_stop(&self->agent);
	param_set("request_timeout", "30");
}

static pid_t spawn(FIXTURE_DATA(pool) *self, const char *desc, const char *expect)
{
	pid_t pid = requester_start("user", desc, "x", expect, NULL);

	if (pid > 0 && self->npids < 8)
		self->pids[self->npids++] = pid;
	return pid;
}

/* Reads one record from @fd (within WAIT_MS) and answers it with @text: its serial, or -1. */
static int answer_one(int fd, const char *text, char *desc, size_t size)
{
	struct chan_req r;
	size_t len;
	long n = chan_read(fd, store, KEYAGENT_REQUEST_MAX, WAIT_MS);

	if (n <= 0 || chan_parse(store, n, &r) != n)
		return -1;
	if (desc)
		snprintf(desc, size, "%.*s", (int)(size - 1), r.desc);
	len = chan_instantiate(answers, r.serial, text);
	return chan_write(fd, answers, len) == (long)len ? r.serial : -1;
}

static int readable(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	return poll(&pfd, 1, 0) == 1;
}

/* The key shows two members; each new construction goes where fewer are pending. */
TEST_F(pool, fewest_pending_chosen)
{
	char line[512];
	pid_t p1, p2;

	ASSERT_EQ(0, proc_keys_line(self->key, line, sizeof(line)));
	ASSERT_NE(NULL, strstr(line, " members 2")) TH_LOG("%s", line);
	p1 = spawn(self, "pool-fewest-1", "A");
	ASSERT_LT(0, p1);
	/* Both have none pending: the key's first agent takes it. */
	ASSERT_TRUE(wait_for(readable(self->a), WAIT_MS));
	ASSERT_FALSE(readable(self->b));
	/* Now the first has one: the second request goes to the other. */
	p2 = spawn(self, "pool-fewest-2", "B");
	ASSERT_LT(0, p2);
	ASSERT_TRUE(wait_for(readable(self->b), WAIT_MS));
	ASSERT_LT(0, answer_one(self->a, "A", NULL, 0));
	ASSERT_LT(0, answer_one(self->b, "B", NULL, 0));
	ASSERT_EQ(0, wait_child(p1, WAIT_MS));
	ASSERT_EQ(0, wait_child(p2, WAIT_MS));
}

/* A registration without "pool" replaces the key's agents: only it is handed constructions. */
TEST_F(pool, registration_without_pool_replaces)
{
	int c = chan_open(0);
	char line[512];
	pid_t pid;

	ASSERT_LE(0, c);
	ASSERT_EQ(self->key, chan_register(c, "user", NULL, KEY_SPEC_SESSION_KEYRING));
	ASSERT_EQ(0, proc_keys_line(self->key, line, sizeof(line)));
	ASSERT_EQ(NULL, strstr(line, " members ")) TH_LOG("%s", line);
	pid = spawn(self, "pool-replaced", "C");
	ASSERT_LT(0, pid);
	ASSERT_LT(0, answer_one(c, "C", NULL, 0));
	ASSERT_EQ(0, wait_child(pid, WAIT_MS));
	ASSERT_FALSE(readable(self->a));
	ASSERT_FALSE(readable(self->b));
	close(c);
}

/* What a channel had not read when it died moves to the other channel and is answered there. */
TEST_F(pool, unread_construction_moves_on_death)
{
	long rehanded = stat_read("rehanded");
	char desc[64];
	pid_t pid;

	pid = spawn(self, "pool-moved", "B");
	ASSERT_LT(0, pid);
	ASSERT_TRUE(wait_for(readable(self->a), WAIT_MS));
	close(self->a);
	self->a = -1;
	ASSERT_LT(0, answer_one(self->b, "B", desc, sizeof(desc)));
	ASSERT_STREQ("pool-moved", desc);
	ASSERT_EQ(0, wait_child(pid, WAIT_MS));
	ASSERT_EQ(rehanded + 1, stat_read("rehanded"));
}

/* What a channel had read when it died fails, pool or not. */
TEST_F(pool, read_construction_fails_on_death)
{
	pid_t pid;
	long n;

	pid = spawn(self, "pool-read-died", NULL);
	ASSERT_LT(0, pid);
	n = chan_read(self->a, store, KEYAGENT_REQUEST_MAX, WAIT_MS);
	ASSERT_LT(0, n);
	close(self->a);
	self->a = -1;
	ASSERT_EQ(EOWNERDEAD, wait_child(pid, WAIT_MS));
	ASSERT_FALSE(readable(self->b));
}

/* With every member dead the key is dead: the request falls back to /sbin/request-key. */
TEST_F(pool, all_dead_falls_back)
{
	long fallback = stat_read("fallback"), routed = stat_read("routed");

	close(self->a);
	close(self->b);
	self->a = self->b = -1;
	/* What the guest's request-key.conf makes of it does not matter here. */
	request("user", "pool-all-dead", "x", 0);
	ASSERT_EQ(fallback + 1, stat_read("fallback"));
	ASSERT_EQ(routed, stat_read("routed"));
	ASSERT_TRUE(wait_for(key_gone(self->key), WAIT_MS));
}

/* A signal agent joins a channel's pool; each serves one of two concurrent requests. */
TEST_F(pool, signal_agent_joins)
{
	const char *args[] = { "-S", "pool", NULL };
	pid_t p1, p2;
	char desc[64];
	int status;

	close(self->b);
	self->b = -1;
	ASSERT_EQ(0, agent_start(&self->agent, args));
	ASSERT_EQ(self->key, self->agent.key);
	p1 = spawn(self, "pool-sig-1", "A");
	ASSERT_LT(0, p1);
	ASSERT_TRUE(wait_for(readable(self->a), WAIT_MS));
	/* The channel has one pending: the next goes to the signal agent, which answers it. */
	p2 = spawn(self, "pool-sig-2", "agent:x");
	ASSERT_LT(0, p2);
	status = wait_child(p2, WAIT_MS);
	ASSERT_EQ(0, status);
	ASSERT_LT(0, answer_one(self->a, "A", desc, sizeof(desc)));
	ASSERT_STREQ("pool-sig-1", desc);
	ASSERT_EQ(0, wait_child(p1, WAIT_MS));
}

/* An agent's own request goes to another member instead of failing with EDEADLK. */
TEST_F(pool, own_request_served_by_another_member)
{
	char buf[32];
	pid_t agent;
	long key;
	int fds[2];

	ASSERT_EQ(0, pipe(fds));
	close(self->b);
	self->b = -1;
	agent = fork();
	ASSERT_LE(0, agent);
	if (agent == 0) {
		/* The other member: answers one construction and exits. */
		int c = chan_open(0), ok;

		close(fds[0]);
		ok = c >= 0 && chan_register(c, "user", " pool", KEY_SPEC_SESSION_KEYRING) > 0;
		if (write(fds[1], ok ? "1" : "0", 1) != 1 || !ok)
			_exit(1);
		_exit(answer_one(c, "other", NULL, 0) > 0 ? 0 : 2);
	}
	close(fds[1]);
	ASSERT_EQ(1, read(fds[0], buf, 1));
	close(fds[0]);
	ASSERT_EQ('1', buf[0]);
	/* This thread registered the key's first agent: the other member serves it. */
	key = request("user", "pool-own", "x", 0);
	ASSERT_LT(0, key);
	ASSERT_LT(0, payload(key, buf, sizeof(buf)));
	ASSERT_STREQ("other", buf);
	ASSERT_EQ(0, wait_child(agent, WAIT_MS));
}

/* Only the key's owner joins (EPERM), at most 32 live agents (ENOSPC). */
TEST_F(pool, joining_refused)
{
	int fds[40], i, n = 0;
	long ret = 0;

	ASSERT_EQ(0, keyctl_setperm(self->key, KEY_POS_ALL | KEY_USR_ALL));
	ASSERT_EQ(0, seteuid(1000));
	ASSERT_EQ(-EPERM, chan_register(self->b, "user", " pool", KEY_SPEC_SESSION_KEYRING));
	ASSERT_EQ(0, seteuid(0));
	/* Two are in: 30 more fit. */
	for (i = 0; i < 31; i++) {
		fds[n] = chan_open(0);
		ASSERT_LE(0, fds[n]);
		ret = chan_register(fds[n++], "user", " pool", KEY_SPEC_SESSION_KEYRING);
		if (ret < 0)
			break;
	}
	EXPECT_EQ(30, i);
	EXPECT_EQ(-ENOSPC, ret);
	for (i = 0; i < n; i++)
		close(fds[i]);
	/* Dead members leave at the next join. */
	fds[0] = chan_open(0);
	ASSERT_LE(0, fds[0]);
	EXPECT_EQ(self->key, chan_register(fds[0], "user", " pool", KEY_SPEC_SESSION_KEYRING));
	close(fds[0]);
}

TEST_HARNESS_MAIN
