// SPDX-License-Identifier: GPL-2.0
/*
 * Whom an agent may serve: a requester that gained privilege over the agent's
 * owner (a setuid or setgid program, su or sudo without a new session, a
 * run-time seteuid back to root) keeps the session keyring that holds the
 * agent's key, but its constructions must not reach that agent. Agents of
 * the requester's own user, and agents owned by root, still serve it; root
 * trusts another user's agent only by taking ownership of its key.
 */
#include <fcntl.h>
#include <grp.h>
#include <sys/stat.h>

#include "kselftest_harness.h"
#include "keyagent_util.h"

#define USER_UID 1000
#define REQUEST_PATH "/tests/keyagent-test-request"
#define SETUID_PATH "/tmp/trust-setuid-request"
#define SETGID_PATH "/tmp/trust-setgid-request"

/* Copies the requester program to @path, owned by root:@gid, with @mode. */
static int install_copy(const char *path, gid_t gid, mode_t mode)
{
	char buf[65536];
	int in, out, ok = 1;
	ssize_t n;

	unlink(path);
	in = open(REQUEST_PATH, O_RDONLY);
	out = open(path, O_WRONLY | O_CREAT | O_EXCL, 0700);
	if (in < 0 || out < 0)
		return -1;
	while ((n = read(in, buf, sizeof(buf))) > 0)
		ok &= write(out, buf, n) == n;
	close(in);
	close(out);
	if (!ok || n < 0 || chown(path, 0, gid) || chmod(path, mode))
		return -1;
	return 0;
}

/* Runs @argv and leaves the first line of its output in @out. */
static int run(const char *const *argv, char *out, size_t size)
{
	int fds[2], status;
	ssize_t len = 0, n;
	pid_t pid;

	if (pipe(fds) < 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		dup2(fds[1], 1);
		close(fds[0]);
		close(fds[1]);
		execv(argv[0], (char **)argv);
		_exit(127);
	}
	close(fds[1]);
	while (len < (ssize_t)size - 1 && (n = read(fds[0], out + len, size - 1 - len)) > 0)
		len += n;
	close(fds[0]);
	out[len] = 0;
	out[strcspn(out, "\n")] = 0;
	if (waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* All ids @uid, the saved uid kept (root) when @keep_root; no supplementary groups. */
static int become_user(uid_t uid, int keep_root)
{
	if (geteuid() == 0 && setgroups(0, NULL))
		return -1;
	if (setresgid(uid, uid, uid))
		return -1;
	return setresuid(uid, uid, keep_root ? 0 : uid);
}

static void agent_as_user(void)
{
	if (become_user(USER_UID, 0))
		_exit(126);
}

static void agent_as_user_own_session(void)
{
	if (become_user(USER_UID, 0) || keyctl_join_session_keyring(NULL) < 0)
		_exit(126);
}

FIXTURE(trust) {
	struct agent agent;
	char log[64];
};

FIXTURE_SETUP(trust)
{
	if (!module_loaded())
		SKIP(return, "keyagent module not loaded");
	ASSERT_EQ(0, chmod("/tmp", 01777));
	snprintf(self->log, sizeof(self->log), "/tmp/trust-agent.log.%d", getpid());
	unlink(self->log);
	self->agent.pid = 0;
}

FIXTURE_TEARDOWN(trust)
{
	/* Tests that keep root as their saved uid get it back to stop a root agent. */
	if (geteuid() != 0 && setresuid(0, 0, 0))
		TH_LOG("teardown as uid %d", getuid());
	agent_stop(&self->agent);
	unlink(self->log);
}

/*
 * Becomes uid 1000 (keeping root as saved uid when @keep_root) in a new
 * session keyring of that user, with an agent of that user registered there.
 */
static void user_session_with_agent(struct __test_metadata *_metadata,
				    FIXTURE_DATA(trust) *self, int keep_root)
{
	const char *args[] = { "-l", self->log, NULL };

	ASSERT_EQ(0, become_user(USER_UID, keep_root));
	ASSERT_LT(0, keyctl_join_session_keyring(NULL));
	ASSERT_EQ(0, agent_start_with(&self->agent, args, agent_as_user));
}

/* The control: the agent's own user is served. */
TEST_F(trust, same_user_served)
{
	const char *argv[] = { REQUEST_PATH, "user", "trust-same", "cb", NULL };
	char out[128];

	user_session_with_agent(_metadata, self, 0);
	ASSERT_EQ(0, run(argv, out, sizeof(out)));
	ASSERT_STREQ("agent:cb", out);
	ASSERT_EQ(1, count_lines(self->log));
}

/* A setuid-root program run by the agent's user: /sbin/request-key answers. */
TEST_F(trust, setuid_root_requester_not_served)
{
	const char *argv[] = { SETUID_PATH, "user", "trust-setuid", "cb", NULL };
	long untrusted = stat_read("untrusted");
	char out[128];

	ASSERT_EQ(0, install_copy(SETUID_PATH, 0, 04755));
	user_session_with_agent(_metadata, self, 1);
	ASSERT_EQ(0, run(argv, out, sizeof(out)));
	ASSERT_STREQ("request-key:cb", out);
	ASSERT_GE(0, count_lines(self->log));
	/* Root again to read the counter. */
	ASSERT_EQ(0, setresuid(0, 0, 0));
	ASSERT_EQ(untrusted + 1, stat_read("untrusted"));
}

/* su or sudo without a new session: a root image that kept the session keyring. */
TEST_F(trust, su_without_new_session_not_served)
{
	const char *argv[] = { SETUID_PATH, "-s", "user", "trust-su", "cb", NULL };
	char out[128];

	ASSERT_EQ(0, install_copy(SETUID_PATH, 0, 04755));
	user_session_with_agent(_metadata, self, 0);
	ASSERT_EQ(0, run(argv, out, sizeof(out)));
	ASSERT_STREQ("request-key:cb", out);
	ASSERT_GE(0, count_lines(self->log));
}

/* Back to root at run time (seteuid with root as the saved uid), no exec. */
TEST_F(trust, runtime_credential_change_not_served)
{
	char buf[64];
	long key;

	user_session_with_agent(_metadata, self, 1);
	ASSERT_EQ(0, setresuid(0, 0, 0));
	key = request("user", "trust-seteuid", "cb", 0);
	ASSERT_LT(0, key);
	ASSERT_LT(0, payload(key, buf, sizeof(buf)));
	ASSERT_STREQ("request-key:cb", buf);
	ASSERT_GE(0, count_lines(self->log));
}

/* A setgid program keeps the uid but gains a group: not served either. */
TEST_F(trust, setgid_requester_not_served)
{
	const char *argv[] = { SETGID_PATH, "user", "trust-setgid", "cb", NULL };
	char out[128];

	ASSERT_EQ(0, install_copy(SETGID_PATH, 50, 02755));
	user_session_with_agent(_metadata, self, 0);
	ASSERT_EQ(0, run(argv, out, sizeof(out)));
	ASSERT_STREQ("request-key:cb", out);
	ASSERT_GE(0, count_lines(self->log));
}

/* An agent owned by root serves the users that share its session. */
TEST_F(trust, root_agent_serves_user)
{
	const char *args[] = { "-l", self->log, NULL };
	char buf[64];
	long key;

	ASSERT_LT(0, keyctl_join_session_keyring(NULL));
	ASSERT_EQ(0, agent_start(&self->agent, args));
	ASSERT_EQ(0, become_user(USER_UID, 1));
	key = request("user", "trust-root-agent", "cb", 0);
	ASSERT_LT(0, key);
	ASSERT_LT(0, payload(key, buf, sizeof(buf)));
	ASSERT_STREQ("agent:cb", buf);
	ASSERT_EQ(1, count_lines(self->log));
}

/*
 * Root links another user's agent key into its own session: not enough. Root
 * trusts it by taking ownership of the key (keyctl chown, which needs
 * CAP_SYS_ADMIN).
 */
TEST_F(trust, root_trusts_by_taking_ownership)
{
	const char *args[] = { "-l", self->log, "-P", "0x3f3f3f3f", NULL };
	char buf[64];
	long key;

	ASSERT_LT(0, keyctl_join_session_keyring(NULL));
	ASSERT_EQ(0, agent_start_with(&self->agent, args, agent_as_user_own_session));
	ASSERT_EQ(0, keyctl_link(self->agent.key, KEY_SPEC_SESSION_KEYRING));

	key = request("user", "trust-linked", "cb", 0);
	ASSERT_LT(0, key);
	ASSERT_LT(0, payload(key, buf, sizeof(buf)));
	ASSERT_STREQ("request-key:cb", buf);
	ASSERT_GE(0, count_lines(self->log));

	ASSERT_EQ(0, keyctl_chown(self->agent.key, 0, -1));
	key = request("user", "trust-owned", "cb", 0);
	ASSERT_LT(0, key);
	ASSERT_LT(0, payload(key, buf, sizeof(buf)));
	ASSERT_STREQ("agent:cb", buf);
	ASSERT_EQ(1, count_lines(self->log));
}

TEST_HARNESS_MAIN
