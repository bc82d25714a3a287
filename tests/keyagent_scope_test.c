// SPDX-License-Identifier: GPL-2.0
/*
 * Agents scoped to a network namespace ("SIGNAL net"): who may register one,
 * for which key types, and which of the kernel's own constructions they get.
 * The kernel's requests are made by the test module
 * (tests/kmod/keyagent_test_caller.c) exactly as its callers make them:
 * dns_query() for dns_resolver keys, which are cached per network namespace,
 * and request_key() under override credentials for "keyagent_test" keys, a
 * type with a global cache like the NFS idmapper's id_resolver.
 */
#include <sched.h>
#include <sys/stat.h>

#include "kselftest_harness.h"
#include "keyagent_util.h"

#define LOG_PATH "/tmp/scope-agent.log"

/* A file's content, written in one go. */
static int write_str(const char *path, const char *s)
{
	return write_file(path, s);
}

/*
 * Enters a new user namespace in which the caller (euid @outside) is root,
 * with all capabilities there, and, with @net, a new network namespace owned
 * by it: a container's root.
 */
static int become_container_root(uid_t outside, int net)
{
	char map[64];

	if (unshare(CLONE_NEWUSER | (net ? CLONE_NEWNET : 0)) < 0)
		return -1;
	snprintf(map, sizeof(map), "0 %u 1", outside);
	if (write_str("/proc/self/setgroups", "deny") || write_str("/proc/self/uid_map", map))
		return -1;
	snprintf(map, sizeof(map), "0 %u 1", outside);
	return write_str("/proc/self/gid_map", map);
}

/* The agent child: root of a container with its own network namespace. */
static void agent_in_container(void)
{
	if (become_container_root(0, 1) || keyctl_join_session_keyring(NULL) < 0)
		_exit(126);
}

/* Joins the network namespace of @pid: 0 or -1. */
static int enter_net_of(pid_t pid)
{
	char path[64];
	int fd, ret;

	snprintf(path, sizeof(path), "/proc/%d/ns/net", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ret = setns(fd, CLONE_NEWNET);
	close(fd);
	return ret;
}

/*
 * Runs kernel_query(@file, @name) in a child in the network namespace of
 * @netns_of (0: ours); the answer in @buf. Returns its length or -errno.
 */
static long query_in(pid_t netns_of, const char *file, const char *name, char *buf,
		     size_t size)
{
	int fds[2], status;
	long n;
	pid_t pid;

	if (pipe(fds) < 0)
		return -errno;
	pid = fork();
	if (pid == 0) {
		char answer[256];

		close(fds[0]);
		n = netns_of && enter_net_of(netns_of) ? -errno :
			kernel_query(file, name, answer, sizeof(answer));
		if (write(fds[1], &n, sizeof(n)) != sizeof(n) ||
		    (n > 0 && write(fds[1], answer, n) != n))
			_exit(1);
		_exit(0);
	}
	close(fds[1]);
	n = -EIO;
	if (read(fds[0], &n, sizeof(n)) == sizeof(n) && n > 0)
		n = read(fds[0], buf, size - 1);
	buf[n > 0 ? n : 0] = 0;
	close(fds[0]);
	waitpid(pid, &status, 0);
	return n;
}

/* The inode number of our network namespace, as /proc/keys shows scopes. */
static unsigned long own_netns(void)
{
	struct stat st;

	return stat("/proc/self/ns/net", &st) ? 0 : st.st_ino;
}

FIXTURE(scope) {
	struct agent agent;
	char log[64];
};

FIXTURE_SETUP(scope)
{
	if (!module_loaded())
		SKIP(return, "keyagent module not loaded");
	if (caller_module_load())
		SKIP(return, "no test caller module (%s)", CALLER_MODULE_PATH);
	ASSERT_LT(0, keyctl_join_session_keyring(NULL));
	snprintf(self->log, sizeof(self->log), LOG_PATH ".%d", getpid());
	unlink(self->log);
	self->agent.pid = 0;
	ASSERT_EQ(0, param_set("global_types", "\n"));
}

FIXTURE_TEARDOWN(scope)
{
	agent_stop(&self->agent);
	unlink(self->log);
	param_set("global_types", "\n");
	param_set("request_timeout", "30");
}

/* The payload "SIGNAL net": accepted, read back, shown in /proc/keys. */
TEST_F(scope, registration_payload)
{
	char want[64], line[512], buf[32];
	long key;
	int found = 0;
	FILE *f;

	ASSERT_EQ(-EINVAL, add("keyagent", "dns_resolver", "40 nett", 7, KEY_SPEC_SESSION_KEYRING));
	ASSERT_EQ(-EINVAL, add("keyagent", "dns_resolver", "40  net", 7, KEY_SPEC_SESSION_KEYRING));
	ASSERT_EQ(-EINVAL, add("keyagent", "dns_resolver", "40 net ", 7, KEY_SPEC_SESSION_KEYRING));
	ASSERT_EQ(-EINVAL, add("keyagent", "dns_resolver", "net", 3, KEY_SPEC_SESSION_KEYRING));
	key = add("keyagent", "dns_resolver", "40 net\n", 7, KEY_SPEC_SESSION_KEYRING);
	ASSERT_LT(0, key);
	ASSERT_EQ(6, payload(key, buf, sizeof(buf)));
	ASSERT_STREQ("40 net", buf);

	snprintf(want, sizeof(want), " sig 40 alive sent 0 pending 0 scope net:[%lu]", own_netns());
	f = fopen("/proc/keys", "r");
	ASSERT_NE(NULL, f);
	while (fgets(line, sizeof(line), f))
		if (strtoul(line, NULL, 16) == (unsigned long)key) {
			found = 1;
			ASSERT_NE(NULL, strstr(line, want)) TH_LOG("line: %s", line);
		}
	fclose(f);
	ASSERT_TRUE(found);
	key = add("keyagent", "user", "41", 2, KEY_SPEC_SESSION_KEYRING);
	ASSERT_LT(0, key);
	ASSERT_EQ(2, payload(key, buf, sizeof(buf)));
	ASSERT_STREQ("41", buf);
}

/* An unprivileged user may register a session agent, never a scoped one. */
TEST_F(scope, unprivileged_user_refused)
{
	ASSERT_EQ(0, param_set("global_types", "keyagent_test"));
	ASSERT_EQ(0, setresgid(1000, 1000, 1000));
	ASSERT_EQ(0, setresuid(1000, 1000, 1000));
	ASSERT_LT(0, keyctl_join_session_keyring(NULL));
	ASSERT_EQ(-EPERM, add("keyagent", "dns_resolver", "40 net", 6, KEY_SPEC_SESSION_KEYRING));
	ASSERT_EQ(-EPERM, add("keyagent", "keyagent_test", "40 net", 6, KEY_SPEC_SESSION_KEYRING));
	ASSERT_LT(0, add("keyagent", "dns_resolver", "40", 2, KEY_SPEC_SESSION_KEYRING));
}

/*
 * A container's root may serve its own network namespace only: with a user
 * namespace but the initial network namespace (owned by the initial user
 * namespace), it is refused; with its own network namespace, admitted.
 */
TEST_F(scope, container_root_serves_own_netns_only)
{
	pid_t pid = fork();
	int status;

	if (pid == 0) {
		if (become_container_root(0, 0) || keyctl_join_session_keyring(NULL) < 0)
			_exit(10);
		if (add("keyagent", "dns_resolver", "40 net", 6, KEY_SPEC_SESSION_KEYRING) != -EPERM)
			_exit(11);
		if (unshare(CLONE_NEWNET) < 0)
			_exit(12);
		if (add("keyagent", "dns_resolver", "40 net", 6, KEY_SPEC_SESSION_KEYRING) < 0)
			_exit(13);
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(0, WEXITSTATUS(status));
}

/*
 * A type with a global cache: refused (EACCES) until the administrator lists
 * it in global_types, then for root of the initial user namespace only.
 */
TEST_F(scope, global_type_needs_opt_in_and_init_root)
{
	int status;
	pid_t pid;

	ASSERT_EQ(-EACCES, add("keyagent", "keyagent_test", "40 net", 6, KEY_SPEC_SESSION_KEYRING));
	ASSERT_EQ(-EACCES, add("keyagent", "user", "40 net", 6, KEY_SPEC_SESSION_KEYRING));
	ASSERT_EQ(0, param_set("global_types", "id_resolver,keyagent_test"));
	ASSERT_LT(0, add("keyagent", "keyagent_test", "40 net", 6, KEY_SPEC_SESSION_KEYRING));
	ASSERT_EQ(-EACCES, add("keyagent", "user", "40 net", 6, KEY_SPEC_SESSION_KEYRING));

	pid = fork();
	if (pid == 0) {
		if (become_container_root(0, 1) || keyctl_join_session_keyring(NULL) < 0)
			_exit(10);
		_exit(add("keyagent", "keyagent_test", "40 net", 6,
			  KEY_SPEC_SESSION_KEYRING) == -EPERM ? 0 : 11);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(0, WEXITSTATUS(status));
}

/* Bad global_types values are refused. */
TEST_F(scope, global_types_parameter_validated)
{
	char buf[300];

	ASSERT_NE(0, param_set("global_types", "a b"));
	memset(buf, 'a', sizeof(buf) - 1);
	buf[sizeof(buf) - 1] = 0;
	ASSERT_NE(0, param_set("global_types", buf));
	ASSERT_EQ(0, param_set("global_types", "cifs.spnego,id_resolver"));
	ASSERT_EQ(0, param_set("global_types", "\n"));
}

/*
 * dns_query() in a container's network namespace goes to the container's
 * agent; the same name looked up in the initial namespace goes to
 * /sbin/request-key (key.dns_resolver answers "localhost" from /etc/hosts).
 * Each answer is cached in its own namespace only.
 */
TEST_F(scope, dns_query_answered_in_its_netns)
{
	const char *args[] = { "-t", "dns_resolver", "-S", "net", "-A", "box", "-l", self->log, NULL };
	long routed = stat_read("kernel_routed"), fallback = stat_read("kernel_fallback");
	char buf[256];

	ASSERT_EQ(0, agent_start_with(&self->agent, args, agent_in_container));
	ASSERT_EQ(4, query_in(self->agent.pid, "dns_query", "localhost", buf, sizeof(buf)));
	ASSERT_STREQ("box:", buf);
	ASSERT_EQ(routed + 1, stat_read("kernel_routed"));
	ASSERT_EQ(1, count_lines(self->log));

	/* Outside: the host's handler, not the container's cached answer. */
	ASSERT_LT(0, query_in(0, "dns_query", "localhost", buf, sizeof(buf)));
	ASSERT_STREQ("127.0.0.1", buf);
	ASSERT_EQ(fallback + 1, stat_read("kernel_fallback"));

	/* Inside again: the container's own cached answer. */
	ASSERT_EQ(4, query_in(self->agent.pid, "dns_query", "localhost", buf, sizeof(buf)));
	ASSERT_STREQ("box:", buf);
	ASSERT_EQ(1, count_lines(self->log));
}

/*
 * A kernel thread naming the container's namespace (as cifsd does): 6.12 tags
 * the key with the kernel thread's own namespace, the initial one, so the
 * answer is cached there and the construction goes where the initial
 * namespace's go: /sbin/request-key, not the container's agent.
 */
TEST_F(scope, kernel_thread_request_stays_with_its_own_netns)
{
	const char *args[] = { "-t", "dns_resolver", "-S", "net", "-A", "box", "-l", self->log, NULL };
	long fallback = stat_read("kernel_fallback");
	char buf[256];

	ASSERT_EQ(0, agent_start_with(&self->agent, args, agent_in_container));
	ASSERT_LT(0, query_in(self->agent.pid, "dns_query_kthread", "localhost", buf, sizeof(buf)));
	ASSERT_STREQ("127.0.0.1", buf);
	ASSERT_EQ(fallback + 1, stat_read("kernel_fallback"));
	ASSERT_GE(0, count_lines(self->log));
}

/* A userspace request of the type is not the kernel's: only the session rule applies. */
TEST_F(scope, userspace_request_not_served_by_scope)
{
	/* Registered in its process keyring: the index finds it, the session rule cannot. */
	const char *args[] = { "-t", "user", "-S", "net", "-k", "-2", "-l", self->log, NULL };
	long key;
	char buf[64];

	ASSERT_EQ(0, param_set("global_types", "user"));
	ASSERT_EQ(0, agent_start(&self->agent, args));
	key = request("user", "scope-userspace", "cb", 0);
	ASSERT_LT(0, key);
	ASSERT_LT(0, payload(key, buf, sizeof(buf)));
	ASSERT_STREQ("request-key:cb", buf);
	ASSERT_GE(0, count_lines(self->log));
}

/*
 * A global type: the requesting task's network namespace picks the agent, if
 * the type is listed; a kernel thread's request never goes to an agent.
 */
TEST_F(scope, global_type_routed_by_task_netns)
{
	const char *args[] = { "-t", "keyagent_test", "-S", "net", "-A", "idmap", "-l", self->log,
			       NULL };
	char buf[256];

	ASSERT_EQ(0, param_set("global_types", "keyagent_test"));
	ASSERT_EQ(0, agent_start(&self->agent, args));
	ASSERT_EQ(6, query_in(0, "request", "scope-g1", buf, sizeof(buf)));
	ASSERT_STREQ("idmap:", buf);
	ASSERT_EQ(1, count_lines(self->log));

	/* From a kernel thread: /sbin/request-key. */
	ASSERT_LT(0, query_in(0, "request_kthread", "scope-g2", buf, sizeof(buf)));
	ASSERT_STREQ("request-key:", buf);
	ASSERT_EQ(1, count_lines(self->log));

	/* No longer listed: /sbin/request-key, even for the registered agent. */
	ASSERT_EQ(0, param_set("global_types", "\n"));
	ASSERT_LT(0, query_in(0, "request", "scope-g3", buf, sizeof(buf)));
	ASSERT_STREQ("request-key:", buf);
	ASSERT_EQ(1, count_lines(self->log));
}

/*
 * Starts a container agent that never answers and a dns_query() of @name in
 * its namespace, from a child whose exit status is the errno it gets; returns
 * once the construction is in the agent's hands.
 */
static pid_t pending_kernel_request(struct __test_metadata *_metadata,
				    FIXTURE_DATA(scope) *self, const char *name)
{
	const char *args[] = { "-t", "dns_resolver", "-S", "net", "-i", NULL };
	long routed;
	char buf[64];
	pid_t pid;

	EXPECT_EQ(0, param_set("request_timeout", FAR_TIMEOUT));
	EXPECT_EQ(0, agent_start_with(&self->agent, args, agent_in_container));
	routed = stat_read("kernel_routed");
	pid = fork();
	if (pid == 0)
		_exit(-query_in(self->agent.pid, "dns_query", name, buf, sizeof(buf)));
	EXPECT_TRUE(wait_for(stat_read("kernel_routed") == routed + 1, WAIT_MS));
	return pid;
}

/* A scoped agent that dies holding a kernel construction: EOWNERDEAD, as for session agents. */
TEST_F(scope, agent_killed_holding_kernel_request)
{
	pid_t pid = pending_kernel_request(_metadata, self, "scope-dead.example");
	int status;

	agent_stop(&self->agent);
	ASSERT_TRUE(wait_for(waitpid(pid, &status, WNOHANG) == pid, WAIT_MS));
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(EOWNERDEAD, WEXITSTATUS(status));
}

/* A scoped agent that never answers: ETIMEDOUT after request_timeout. */
TEST_F_TIMEOUT(scope, kernel_request_times_out, 300)
{
	const char *args[] = { "-t", "dns_resolver", "-S", "net", "-i", NULL };
	char buf[64];

	ASSERT_EQ(0, param_set("request_timeout", "1"));
	ASSERT_EQ(0, agent_start_with(&self->agent, args, agent_in_container));
	ASSERT_EQ(-ETIMEDOUT, query_in(self->agent.pid, "dns_query", "scope-slow.example", buf,
				       sizeof(buf)));
}

/* The agent itself asking the kernel for a name it would answer: EDEADLK at once. */
TEST_F(scope, agent_own_kernel_request_fails_at_once)
{
	char buf[64];
	sigset_t set;

	ASSERT_EQ(0, param_set("request_timeout", FAR_TIMEOUT));
	sigemptyset(&set);
	sigaddset(&set, 40);
	ASSERT_EQ(0, sigprocmask(SIG_BLOCK, &set, NULL));
	ASSERT_EQ(0, unshare(CLONE_NEWNET));
	ASSERT_LT(0, add("keyagent", "dns_resolver", "40 net", 6, KEY_SPEC_SESSION_KEYRING));
	ASSERT_EQ(-EDEADLK, kernel_query("dns_query", "scope-self.example", buf, sizeof(buf)));
}

/* rmmod with a kernel construction pending: ECANCELED, as for session agents. */
TEST_F(scope, rmmod_cancels_kernel_request)
{
	pid_t pid = pending_kernel_request(_metadata, self, "scope-rmmod.example");
	int status;

	ASSERT_EQ(0, module_unload(WAIT_MS));
	ASSERT_TRUE(wait_for(waitpid(pid, &status, WNOHANG) == pid, WAIT_MS));
	ASSERT_EQ(0, module_load(""));
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(ECANCELED, WEXITSTATUS(status));
}

TEST_HARNESS_MAIN
