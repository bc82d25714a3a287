// SPDX-License-Identifier: GPL-2.0
/*
 * Routing: which requests an agent answers, what it is told, and what is left
 * to /sbin/request-key (whose test handler answers "request-key:<callout>").
 */
#include <sys/prctl.h>
#include <sys/stat.h>

#include "kselftest_harness.h"
#include "keyagent_util.h"

#define LOG_PATH "/tmp/route-agent.log"

/* Reads line @n (from 0) of an agent log: "serial code pid uid". */
static int log_entry(const char *path, int n, long *serial, long *code, long *pid, long *uid)
{
	FILE *f = fopen(path, "r");
	int i, ok = 0;

	if (!f)
		return 0;
	for (i = 0; i <= n; i++)
		ok = fscanf(f, "%ld %ld %ld %ld", serial, code, pid, uid) == 4;
	fclose(f);
	return ok;
}

FIXTURE(route) {
	struct agent agent;
	char log[64];
};

FIXTURE_SETUP(route)
{
	if (!module_loaded())
		SKIP(return, "keyagent module not loaded");
	ASSERT_LT(0, keyctl_join_session_keyring(NULL));
	snprintf(self->log, sizeof(self->log), LOG_PATH ".%d", getpid());
	unlink(self->log);
	self->agent.pid = 0;
}

FIXTURE_TEARDOWN(route)
{
	agent_stop(&self->agent);
	param_set("request_timeout", "30");
	unlink(self->log);
}

static void start_user_agent(struct __test_metadata *_metadata,
			     FIXTURE_DATA(route) *self, const char *type)
{
	const char *args[] = { "-t", type, "-l", self->log, NULL };

	ASSERT_EQ(0, agent_start(&self->agent, args));
}

/* request_key(2) is answered by the agent, the key lands in the destination keyring. */
TEST_F(route, request_key_answered_by_agent)
{
	long serial, code, pid, uid, key, routed = stat_read("routed");
	key_serial_t dest;
	char buf[64];

	start_user_agent(_metadata, self, "user");
	dest = add_key("keyring", "dest", NULL, 0, KEY_SPEC_SESSION_KEYRING);
	ASSERT_LT(0, dest);

	key = request("user", "route-happy", "hello", dest);
	ASSERT_LT(0, key);
	ASSERT_EQ(11, payload(key, buf, sizeof(buf)));
	ASSERT_STREQ("agent:hello", buf);
	ASSERT_EQ(key, keyctl_search(dest, "user", "route-happy", 0));
	ASSERT_EQ(routed + 1, stat_read("routed"));

	/* What the agent was told, through signalfd. */
	ASSERT_TRUE(log_entry(self->log, 0, &serial, &code, &pid, &uid));
	ASSERT_EQ(key, serial);
	ASSERT_EQ(KEYAGENT_SI_CODE, code);
	ASSERT_EQ(getpid(), pid);
	ASSERT_EQ(getuid(), uid);
}

/* The authorisation key goes away when the construction ends. */
TEST_F(route, authkey_gone_after_answer)
{
	char line[256];
	long key;
	int found;
	FILE *f;

	start_user_agent(_metadata, self, "user");
	key = request("user", "route-unlink", "x", 0);
	ASSERT_LT(0, key);
	/* No authorisation key is left behind (root sees them all in /proc/keys). */
	ASSERT_TRUE(wait_for(({
		found = 0;
		f = fopen("/proc/keys", "r");
		while (f && fgets(line, sizeof(line), f))
			found |= strstr(line, ".request_") != NULL;
		if (f)
			fclose(f);
		!found;
	}), WAIT_MS));
}

/* With no agent, /sbin/request-key answers: the hook does not route everything. */
TEST_F(route, no_agent_falls_back)
{
	long key, fallback = stat_read("fallback");
	char buf[64];

	key = request("user", "route-noagent", "cb", 0);
	ASSERT_LT(0, key);
	ASSERT_LT(0, payload(key, buf, sizeof(buf)));
	ASSERT_STREQ("request-key:cb", buf);
	ASSERT_EQ(fallback + 1, stat_read("fallback"));
}

/* An agent for another type changes nothing for "user" keys. */
TEST_F(route, agent_for_other_type_ignored)
{
	long key, existing;
	char buf[64];

	start_user_agent(_metadata, self, "logon");
	key = request("user", "route-other", "cb", 0);
	ASSERT_LT(0, key);
	ASSERT_LT(0, payload(key, buf, sizeof(buf)));
	ASSERT_STREQ("request-key:cb", buf);
	ASSERT_EQ(0, count_lines(self->log) > 0);

	/* The user type's own operations are unchanged. */
	existing = add_key("user", "route-plain", "v1", 2, KEY_SPEC_SESSION_KEYRING);
	ASSERT_LT(0, existing);
	ASSERT_EQ(0, keyctl_update(existing, "v2", 2));
	ASSERT_EQ(2, payload(existing, buf, sizeof(buf)));
	ASSERT_STREQ("v2", buf);
	ASSERT_EQ(existing, request("user", "route-plain", "cb", 0));
}

/* Two agents for two types each get their own requests. */
TEST_F(route, two_agents_two_types)
{
	const char *args[] = { "-t", "logon", "-l", "/tmp/route-logon.log", NULL };
	struct agent logon = { 0 };
	long serial, code, pid, uid, user_key, logon_key;

	unlink("/tmp/route-logon.log");
	start_user_agent(_metadata, self, "user");
	ASSERT_EQ(0, agent_start(&logon, args));

	user_key = request("user", "route-two-u", "u", 0);
	logon_key = request("logon", "route:two-l", "l", 0);
	agent_stop(&logon);
	ASSERT_LT(0, user_key);
	ASSERT_LT(0, logon_key);
	ASSERT_EQ(1, count_lines(self->log));
	ASSERT_EQ(1, count_lines("/tmp/route-logon.log"));
	ASSERT_TRUE(log_entry(self->log, 0, &serial, &code, &pid, &uid));
	ASSERT_EQ(user_key, serial);
	ASSERT_TRUE(log_entry("/tmp/route-logon.log", 0, &serial, &code, &pid, &uid));
	ASSERT_EQ(logon_key, serial);
	unlink("/tmp/route-logon.log");
}

/* An agent key in a keyring nested in the session keyring is found. */
TEST_F(route, nested_keyring)
{
	key_serial_t nest = add_key("keyring", "nest", NULL, 0, KEY_SPEC_SESSION_KEYRING);
	char nest_id[16], buf[64];
	const char *args[] = { "-k", nest_id, "-l", self->log, NULL };
	long key;

	ASSERT_LT(0, nest);
	snprintf(nest_id, sizeof(nest_id), "%d", nest);
	ASSERT_EQ(0, agent_start(&self->agent, args));
	key = request("user", "route-nested", "n", 0);
	ASSERT_LT(0, key);
	ASSERT_LT(0, payload(key, buf, sizeof(buf)));
	ASSERT_STREQ("agent:n", buf);
}

/* An agent key the requester may not search is ignored. */
TEST_F(route, unsearchable_agent_key_ignored)
{
	long key;
	char buf[64];

	start_user_agent(_metadata, self, "user");
	ASSERT_EQ(0, keyctl_setperm(self->agent.key, KEY_POS_VIEW | KEY_POS_SETATTR));
	key = request("user", "route-nosearch", "cb", 0);
	ASSERT_LT(0, key);
	ASSERT_LT(0, payload(key, buf, sizeof(buf)));
	ASSERT_STREQ("request-key:cb", buf);
	ASSERT_EQ(0, count_lines(self->log) > 0);
}

/* Revoking or unlinking the agent key stops routing at once. */
TEST_F(route, revoked_agent_key_ignored)
{
	long key;
	char buf[64];

	start_user_agent(_metadata, self, "user");
	ASSERT_EQ(0, keyctl_revoke(self->agent.key));
	key = request("user", "route-revoked", "cb", 0);
	ASSERT_LT(0, key);
	ASSERT_LT(0, payload(key, buf, sizeof(buf)));
	ASSERT_STREQ("request-key:cb", buf);
}

TEST_F(route, unlinked_agent_key_ignored)
{
	long key;
	char buf[64];

	start_user_agent(_metadata, self, "user");
	ASSERT_EQ(0, keyctl_unlink(self->agent.key, KEY_SPEC_SESSION_KEYRING));
	key = request("user", "route-unlinked", "cb", 0);
	ASSERT_LT(0, key);
	ASSERT_LT(0, payload(key, buf, sizeof(buf)));
	ASSERT_STREQ("request-key:cb", buf);
}

/* The agent's answers: reject with an error, negate. */
TEST_F(route, agent_rejects_and_negates)
{
	start_user_agent(_metadata, self, "user");
	ASSERT_EQ(-EACCES, request("user", "route-reject", "reject:13", 0));
	ASSERT_EQ(-ENOKEY, request("user", "route-negate", "negate", 0));
}

/* Nobody's agent, in its own session: root's requests do not reach it... */
static void become_nobody(void)
{
	if (setgid(65534) || setuid(65534) || keyctl_join_session_keyring(NULL) < 0)
		_exit(126);
}

TEST_F(route, other_user_cannot_capture)
{
	key_serial_t session = keyctl_get_keyring_ID(KEY_SPEC_SESSION_KEYRING, 0);
	char session_id[16], buf[64];
	const char *into_root[] = { "-k", session_id, NULL };
	const char *own[] = { "-l", self->log, NULL };
	long key;

	/* Its log must be writable by nobody. */
	ASSERT_EQ(0, chmod("/tmp", 01777));
	snprintf(session_id, sizeof(session_id), "%d", session);

	/* It cannot register in root's session keyring (add_key: EACCES)... */
	ASSERT_EQ(-1, agent_start_with(&self->agent, into_root, become_nobody));

	/* ...and an agent in its own session is not consulted. */
	ASSERT_EQ(0, agent_start_with(&self->agent, own, become_nobody));
	key = request("user", "route-nobody-1", "cb", 0);
	ASSERT_LT(0, key);
	ASSERT_LT(0, payload(key, buf, sizeof(buf)));
	ASSERT_STREQ("request-key:cb", buf);
	ASSERT_EQ(0, count_lines(self->log) > 0);
}

/*
 * ...unless root links the agent's key (which the agent allowed) and takes
 * ownership of it, trusting it (see keyagent_trust_test).
 */
TEST_F(route, root_can_trust_other_users_agent)
{
	const char *args[] = { "-l", self->log, "-P", "0x3f3f3f3f", NULL };
	long key, serial, code, pid, uid;
	char buf[64];

	ASSERT_EQ(0, chmod("/tmp", 01777));
	ASSERT_EQ(0, agent_start_with(&self->agent, args, become_nobody));
	ASSERT_EQ(0, keyctl_link(self->agent.key, KEY_SPEC_SESSION_KEYRING));
	ASSERT_EQ(0, keyctl_chown(self->agent.key, 0, -1));
	key = request("user", "route-nobody-2", "cb", 0);
	ASSERT_LT(0, key);
	ASSERT_LT(0, payload(key, buf, sizeof(buf)));
	ASSERT_STREQ("agent:cb", buf);
	ASSERT_TRUE(log_entry(self->log, 0, &serial, &code, &pid, &uid));
	ASSERT_EQ(key, serial);
	ASSERT_EQ(0, uid);
}

/*
 * An agent requesting a key of the type it serves would wait for its own
 * answer: the construction fails at once with EDEADLK instead.
 */
TEST_F_TIMEOUT(route, agent_requesting_own_type_fails_at_once, 300)
{
	long timeouts = stat_read("timeouts"), start;
	sigset_t set;

	/* Well beyond any construction that is not a deadlock. */
	ASSERT_EQ(0, param_set("request_timeout", FAR_TIMEOUT));
	sigemptyset(&set);
	sigaddset(&set, 40);
	ASSERT_EQ(0, sigprocmask(SIG_BLOCK, &set, NULL));
	ASSERT_LT(0, add("keyagent", "user", "40", 2, KEY_SPEC_SESSION_KEYRING));
	start = now_ms();
	ASSERT_EQ(-EDEADLK, request("user", "route-self", "x", 0));
	TH_LOG("failed after %ld ms", now_ms() - start);
	ASSERT_EQ(timeouts, stat_read("timeouts"));
}

TEST_HARNESS_MAIN
