// SPDX-License-Identifier: GPL-2.0
/*
 * Agents and requesters in different user and pid namespaces: the siginfo the
 * agent gets names the requester as seen from the agent's namespaces.
 */
#include <sched.h>
#include <sys/prctl.h>

#include "kselftest_harness.h"
#include "keyagent_util.h"

#define LOG_PATH "/tmp/ns-agent.log"

static int log_entry(long *serial, long *code, long *pid, long *uid)
{
	FILE *f = fopen(LOG_PATH, "r");
	int ok;

	if (!f)
		return 0;
	ok = fscanf(f, "%ld %ld %ld %ld", serial, code, pid, uid) == 4;
	fclose(f);
	return ok;
}

/* Child-side setup: new user and pid namespaces; the agent then runs in them. */
static void new_namespaces(void)
{
	pid_t pid;
	int status;

	if (unshare(CLONE_NEWUSER | CLONE_NEWPID) < 0)
		_exit(125);
	/* The pid namespace applies to children: the agent is its init. */
	pid = fork();
	if (pid < 0)
		_exit(125);
	if (pid > 0) {
		/* Stay around so that killing this process's pid kills the agent too. */
		waitpid(pid, &status, 0);
		_exit(0);
	}
	/* The agent dies with this process, which the test kills. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
}

FIXTURE(ns) {
	struct agent agent;
};

FIXTURE_SETUP(ns)
{
	if (!module_loaded())
		SKIP(return, "keyagent module not loaded");
	ASSERT_LT(0, keyctl_join_session_keyring(NULL));
	unlink(LOG_PATH);
	self->agent.pid = 0;
}

FIXTURE_TEARDOWN(ns)
{
	agent_stop(&self->agent);
	unlink(LOG_PATH);
}

/* Agent in new user+pid namespaces, requester outside: pid 0, overflow uid. */
TEST_F(ns, agent_in_new_namespaces)
{
	const char *args[] = { "-l", LOG_PATH, NULL };
	long key, serial, code, pid, uid;
	char buf[64];

	ASSERT_EQ(0, agent_start_with(&self->agent, args, new_namespaces));
	key = request("user", "ns-agent-inside", "in", 0);
	ASSERT_LT(0, key);
	ASSERT_LT(0, payload(key, buf, sizeof(buf)));
	ASSERT_STREQ("agent:in", buf);
	ASSERT_TRUE(log_entry(&serial, &code, &pid, &uid));
	ASSERT_EQ(key, serial);
	ASSERT_EQ(KEYAGENT_SI_CODE, code);
	/* The requester is not in the agent's pid namespace... */
	ASSERT_EQ(0, pid);
	/* ...and root is not mapped in its user namespace. */
	ASSERT_EQ(65534, uid);
}

/*
 * Runs a request from pid 1 of new user+pid namespaces, with uid 0 mapped to
 * root if @map. Returns the requester's pid as seen from here, or -1.
 */
static pid_t request_from_new_namespaces(int map, const char *desc)
{
	int up[2], down[2], status;
	pid_t outer, inner = -1;
	char path[64], go;

	if (pipe(up) || pipe(down))
		return -1;
	outer = fork();
	if (outer < 0)
		return -1;
	if (outer == 0) {
		if (unshare(CLONE_NEWUSER | CLONE_NEWPID) < 0)
			_exit(125);
		/* Wait for the uid map, then make pid 1 of the new namespace. */
		if (write(up[1], "u", 1) != 1 || read(down[0], &go, 1) != 1)
			_exit(125);
		inner = fork();
		if (inner == 0) {
			long key = request("user", desc, "out", 0);

			_exit(key > 0 && getpid() == 1 ? 0 : 1);
		}
		if (write(up[1], &inner, sizeof(inner)) != sizeof(inner))
			_exit(125);
		waitpid(inner, &status, 0);
		_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 1);
	}
	if (read(up[0], &go, 1) != 1)
		return -1;
	snprintf(path, sizeof(path), "/proc/%d/uid_map", outer);
	if (map && write_file(path, "0 0 1\n"))
		return -1;
	if (write(down[1], "g", 1) != 1 ||
	    read(up[0], &inner, sizeof(inner)) != sizeof(inner))
		return -1;
	if (waitpid(outer, &status, 0) != outer || !WIFEXITED(status) ||
	    WEXITSTATUS(status))
		return -1;
	return inner;
}

/* Requester in new user+pid namespaces, uid 0 mapped to root: its global pid, uid 0. */
TEST_F(ns, requester_in_new_namespaces_mapped)
{
	const char *args[] = { "-l", LOG_PATH, NULL };
	long serial, code, pid, uid;
	pid_t requester;

	ASSERT_EQ(0, agent_start(&self->agent, args));
	requester = request_from_new_namespaces(1, "ns-requester-mapped");
	ASSERT_LT(0, requester);
	ASSERT_TRUE(log_entry(&serial, &code, &pid, &uid));
	ASSERT_EQ(requester, pid);
	ASSERT_EQ(0, uid);
}

/* Unmapped, the requester's uid is the overflow uid, as for any signal it sent. */
TEST_F(ns, requester_in_new_namespaces_unmapped)
{
	const char *args[] = { "-l", LOG_PATH, NULL };
	long serial, code, pid, uid;
	pid_t requester;

	ASSERT_EQ(0, agent_start(&self->agent, args));
	requester = request_from_new_namespaces(0, "ns-requester-unmapped");
	ASSERT_LT(0, requester);
	ASSERT_TRUE(log_entry(&serial, &code, &pid, &uid));
	ASSERT_EQ(requester, pid);
	ASSERT_EQ(65534, uid);
}

TEST_HARNESS_MAIN
