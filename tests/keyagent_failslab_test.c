// SPDX-License-Identifier: GPL-2.0
/*
 * Allocation failures in the module's paths: registration (add_key of a
 * keyagent key), dispatch (a request routed to an agent), the reaper, module
 * init and module exit. Each error path must end in a clean errno, leave no
 * key, authorisation key or pending count behind, and not upset the kernel
 * (the VM runner checks its log). The retirement of a dead agent's key is in
 * keyagent_retire_test.
 *
 * Failures are injected with failslab. Its stack trace filter (require-start,
 * require-end) limits them to allocations made while a given code range is on
 * the stack: the module's text, one of its functions, or the kernel's
 * do_one_initcall() for module init. Where the path runs in a task we control
 * (registration, dispatch, init, exit), /proc/thread-self/fail-nth fails the
 * Nth such allocation of that task only, for N = 1, 2, ... until the operation
 * no longer reaches an Nth allocation: every allocation of the path fails once.
 * The reaper runs in a kworker, so there failslab fails every allocation made
 * under the reaper's function (probability 100). One case does the same with
 * fail_function on should_failslab. The channel's paths (open, registration
 * by descriptor, hand-over, answers, joining a pool) fail the same way.
 */
#include <pthread.h>
#include <sys/mman.h>

#include "kselftest_harness.h"
#include "keyagent_util.h"

#define FAILSLAB "/sys/kernel/debug/failslab/"
#define FAILFUNC "/sys/kernel/debug/fail_function/"
#define MAX_NTH 64

struct range {
	unsigned long start, end;
};

static int knob(const char *dir, const char *name, const char *value)
{
	char path[256];

	snprintf(path, sizeof(path), "%s%s", dir, name);
	return write_file(path, value);
}

static int knob_ulong(const char *dir, const char *name, unsigned long value)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%#lx", value);
	return knob(dir, name, buf);
}

static long knob_read(const char *dir, const char *name)
{
	char path[256];

	snprintf(path, sizeof(path), "%s%s", dir, name);
	return read_number(path);
}

/* Back to the defaults: nothing is injected. */
static void reset(const char *dir)
{
	knob(dir, "probability", "0");
	knob(dir, "interval", "1");
	knob(dir, "times", "1");
	knob(dir, "space", "0");
	knob(dir, "verbose", "2");
	knob(dir, "task-filter", "N");
	knob(dir, "stacktrace-depth", "32");
	knob_ulong(dir, "require-start", 0);
	knob_ulong(dir, "require-end", ~0UL);
	knob_ulong(dir, "reject-start", 0);
	knob_ulong(dir, "reject-end", 0);
	if (strcmp(dir, FAILSLAB) == 0) {
		knob(dir, "ignore-gfp-wait", "Y");
		knob(dir, "cache-filter", "N");
	}
}

static int symbol_range(const char *needle, int module, struct range *r);

/*
 * Injects only below @r, GFP_KERNEL allocations too, one log line each. Not
 * in kmemleak's own bookkeeping (made for each allocation, under the
 * function that kmemleak_alloc() tail-calls), which falls back to a reserve
 * when it fails: it would double the count, for nothing.
 */
static void filter(const char *dir, struct range r)
{
	static const char *const kmemleak_fns[] = {
		"__create_object", "create_object", "kmemleak_alloc",
	};
	static struct range kmemleak;
	unsigned int i;

	knob_ulong(dir, "require-start", r.start);
	knob_ulong(dir, "require-end", r.end);
	for (i = 0; !kmemleak.start && i < sizeof(kmemleak_fns) / sizeof(kmemleak_fns[0]); i++)
		symbol_range(kmemleak_fns[i], 0, &kmemleak);
	if (kmemleak.start) {
		knob_ulong(dir, "reject-start", kmemleak.start);
		knob_ulong(dir, "reject-end", kmemleak.end);
	}
	knob(dir, "stacktrace-depth", "32");
	knob(dir, "verbose", "1");
	if (strcmp(dir, FAILSLAB) == 0)
		knob(dir, "ignore-gfp-wait", "N");
}

/*
 * The code of the first function whose name contains @needle: from its address
 * to the next text symbol's. @module: a keyagent symbol, else the kernel's
 * (whose name must be @needle exactly).
 */
static int symbol_range(const char *needle, int module, struct range *r)
{
	FILE *f = fopen("/proc/kallsyms", "r");
	char line[1024], type, name[800];
	unsigned long addr, start = 0, end = ~0UL;

	if (!f)
		return -1;
	/* First pass: the symbol. */
	while (fgets(line, sizeof(line), f)) {
		int in_module = strstr(line, "[keyagent]") != NULL;

		if (in_module != module || sscanf(line, "%lx %c %799s", &addr, &type, name) != 3)
			continue;
		if (module ? strstr(name, needle) != NULL : strcmp(name, needle) == 0) {
			start = addr;
			break;
		}
	}
	if (!start) {
		fclose(f);
		return -1;
	}
	/* Second pass: the nearest text symbol above it. */
	rewind(f);
	while (fgets(line, sizeof(line), f)) {
		int in_module = strstr(line, "[keyagent]") != NULL;

		if (in_module != module || sscanf(line, "%lx %c", &addr, &type) != 2)
			continue;
		if ((type == 't' || type == 'T') && addr > start && addr < end)
			end = addr;
	}
	fclose(f);
	if (end == ~0UL)
		return -1;
	r->start = start;
	r->end = end;
	return 0;
}

/* Arms fail-nth for the calling thread: its @n-th filtered allocation fails. */
static int fail_nth_set(int n)
{
	char buf[16];

	snprintf(buf, sizeof(buf), "%d", n);
	return write_file("/proc/thread-self/fail-nth", buf);
}

/* What is left of the count: 0 once the failure has been injected. */
static long fail_nth_left(void)
{
	return read_number("/proc/thread-self/fail-nth");
}

/* The outcome of one operation run with fail-nth armed. */
struct outcome {
	long ret;		/* result or -errno */
	long left;		/* fail-nth afterwards; 0: a failure was injected */
	long ms;
};

/* Runs @op in a child (its own process keyring, session inherited) with fail-nth @n. */
static struct outcome in_child(int n, long (*op)(int n, void *arg), void *arg)
{
	struct outcome o = { -EIO, -1, 0 };
	int fds[2];
	pid_t pid;

	if (pipe(fds) < 0)
		return o;
	pid = fork();
	if (pid == 0) {
		long start = now_ms();

		close(fds[0]);
		if (fail_nth_set(n) < 0)
			_exit(1);
		o.ret = op(n, arg);
		o.left = fail_nth_left();
		fail_nth_set(0);
		o.ms = now_ms() - start;
		if (write(fds[1], &o, sizeof(o)) != sizeof(o))
			_exit(1);
		_exit(0);
	}
	close(fds[1]);
	if (read(fds[0], &o, sizeof(o)) != sizeof(o))
		o.ret = -EIO;
	close(fds[0]);
	waitpid(pid, NULL, 0);
	return o;
}

/* Keys of @type (in /proc/keys, which root sees whole), and how many of them are pending. */
static int count_keys(const char *type, int *pending)
{
	FILE *f = fopen("/proc/keys", "r");
	char line[512], t[64];
	int n = 0;

	if (pending)
		*pending = 0;
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		char *p;

		if (sscanf(line, "%*x %*s %*d %*s %*x %*d %*d %63s", t) != 1 || strcmp(t, type))
			continue;
		n++;
		p = strstr(line, " pending ");
		if (pending && p)
			*pending += atoi(p + 9);
	}
	fclose(f);
	return n;
}

/*
 * Whether root's key count is back to @baseline once the keys this test made
 * (in its session) are gone; logs the count if it is not.
 */
static int nkeys_back_to(struct __test_metadata *_metadata, long baseline)
{
	long nkeys;

	keyctl_join_session_keyring(NULL);
	if (wait_for(key_users(0, KU_NKEYS) == baseline, WAIT_MS))
		return 1;
	nkeys = key_users(0, KU_NKEYS);
	TH_LOG("root's keys: %ld before, %ld after", baseline, nkeys);
	return 0;
}

static long op_register(int n, void *arg)
{
	fail_nth_set(0);
	if (keyctl_join_session_keyring(NULL) < 0)
		return -errno;
	if (arg && keyctl_get_keyring_ID(KEY_SPEC_PROCESS_KEYRING, 1) < 0)
		return -errno;
	fail_nth_set(n);	/* only the add_key() counts */
	return add("keyagent", "user", "40", 2, KEY_SPEC_SESSION_KEYRING);
}

/* A scoped registration: the agent's network namespace and the module's index too. */
static long op_register_scoped(int n, void *arg)
{
	fail_nth_set(0);
	if (keyctl_join_session_keyring(NULL) < 0)
		return -errno;
	fail_nth_set(n);
	return add("keyagent", "dns_resolver", "40 net", 6, KEY_SPEC_SESSION_KEYRING);
}

/* Empties dns_resolver's cache (root may clear that keyring): 0 or -errno. */
static int clear_dns_cache(void)
{
	FILE *f = fopen("/proc/keys", "r");
	char line[512];
	long serial = 0;

	while (f && fgets(line, sizeof(line), f))
		if (strstr(line, " keyring   .dns_resolver:"))
			serial = strtol(line, NULL, 16);
	if (f)
		fclose(f);
	if (!serial)
		return -ENOENT;
	return keyctl_clear(serial) < 0 ? -errno : 0;
}

/* The kernel's own request, routed by the kernel rule: dns_query() in the child. */
static long op_kernel_request(int n, void *arg)
{
	char name[64], buf[128];

	snprintf(name, sizeof(name), "failslab-%d-%d.example", n, getpid());
	return kernel_query("dns_query", name, buf, sizeof(buf));
}

static long op_request(int n, void *arg)
{
	char desc[64];

	snprintf(desc, sizeof(desc), "failslab-%s-%d-%d", (char *)arg, n, getpid());
	return request("user", desc, "x", 0);
}

/* A channel: open(/dev/keyagent) with fail-nth @n. */
static long op_channel_open(int n, void *arg)
{
	int fd = open(KEYAGENT_DEVICE, O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	close(fd);
	return 1;
}

/* A channel's registration ("fd N", or joining a pool if @arg). */
static long op_register_channel(int n, void *arg)
{
	int fd;

	fail_nth_set(0);
	if (keyctl_join_session_keyring(NULL) < 0)
		return -errno;
	fd = chan_open(0);
	if (fd < 0)
		return fd;
	if (arg && chan_register(fd, "user", NULL, KEY_SPEC_SESSION_KEYRING) < 0)
		return -errno;
	fail_nth_set(n);
	/* The channel closes when the child exits. */
	return chan_register(fd, "user", arg ? " pool" : NULL, KEY_SPEC_SESSION_KEYRING);
}

/*
 * An answer written with fail-nth @n: a child agent on its own channel in its
 * own session, a grandchild requester. If the write fails, nothing has
 * changed: the same write then answers. Returns the first write's result,
 * with fail-nth left as that write left it.
 */
static long op_channel_write(int n, void *arg)
{
	static char buf[KEYAGENT_REQUEST_MAX];
	struct chan_req r;
	long got, ret, left;
	size_t len;
	pid_t pid;
	int fd;

	fail_nth_set(0);
	if (keyctl_join_session_keyring(NULL) < 0)
		return -errno;
	fd = chan_open(0);
	if (fd < 0 || chan_register(fd, "user", NULL, KEY_SPEC_SESSION_KEYRING) < 0)
		return -EIO;
	pid = requester_start("user", "failslab-write", "x", "chan:x", NULL);
	got = chan_read(fd, buf, sizeof(buf), WAIT_MS);
	if (got <= 0 || chan_parse(buf, got, &r) != got)
		return -EIO;
	len = chan_instantiate(buf, r.serial, "chan:x");
	fail_nth_set(n);
	ret = chan_write(fd, buf, len);
	left = fail_nth_left();
	fail_nth_set(0);
	if (ret < 0 && chan_write(fd, buf, len) != (long)len)
		return -EIO;
	if (wait_child(pid, WAIT_MS) != 0)
		return -EIO;
	close(fd);
	if (left > 0)
		fail_nth_set(left);
	return ret;
}

/* A channel agent in a thread: answers every construction with "chan:CALLOUT". */
struct chan_agent {
	int fd;
	volatile int stop;
	pthread_t thread;
};

static void *chan_agent_run(void *arg)
{
	static char buf[4 * KEYAGENT_REQUEST_MAX], out[4096];
	struct chan_agent *a = arg;

	while (!a->stop) {
		long got = chan_read(a->fd, buf, sizeof(buf), 100), pos = 0;

		while (got > 0 && pos < got) {
			struct chan_req r;
			char text[256];
			long len = chan_parse(buf + pos, got - pos, &r);

			if (len < 0)
				break;
			snprintf(text, sizeof(text), "chan:%s", r.callout);
			chan_write(a->fd, out, chan_instantiate(out, r.serial, text));
			pos += len;
		}
	}
	return NULL;
}

FIXTURE(failslab) {
	struct agent agent;
	struct range module;
	long nkeys;
};

FIXTURE_SETUP(failslab)
{
	self->agent.pid = 0;
	if (access(FAILSLAB "probability", W_OK) || access("/proc/thread-self/fail-nth", W_OK))
		SKIP(return, "failslab or fail-nth not available");
	if (!module_loaded() && module_load("") != 0)
		SKIP(return, "keyagent module not loaded");
	ASSERT_EQ(0, module_range(&self->module.start, &self->module.end));
	ASSERT_LT(0, keyctl_join_session_keyring(NULL));
	reset(FAILSLAB);
	/* Every construction here ends otherwise: by an answer, an error, a death or an unload. */
	param_set("request_timeout", FAR_TIMEOUT);
	self->nkeys = settled_key_users(0, KU_NKEYS);
}

FIXTURE_TEARDOWN(failslab)
{
	reset(FAILSLAB);
	if (access(FAILFUNC "inject", W_OK) == 0) {
		write_file(FAILFUNC "inject", " ");
		reset(FAILFUNC);
	}
	agent_stop(&self->agent);
	if (!module_loaded())
		module_load("");
	param_set("request_timeout", "30");
}

/*
 * Runs @op (what it does: @what) with fail-nth 1, 2, ... until it no longer
 * reaches an Nth allocation, where it must succeed. A failure the kernel
 * tolerates is fine; an error must be ENOMEM (or EAGAIN if @eagain: a signal
 * that cannot be queued). At least one allocation must have been failed.
 */
static void fail_each_allocation(struct __test_metadata *_metadata,
				 long (*op)(int n, void *arg), void *arg, const char *what,
				 int eagain)
{
	int n, failed = 0;

	for (n = 1; n <= MAX_NTH; n++) {
		struct outcome o = in_child(n, op, arg);

		TH_LOG("allocation %d: %s, %s: %ld%s%s in %ld ms", n,
		       o.left == 0 ? "failed" : "not reached", what, o.ret, o.ret < 0 ? " " : "",
		       o.ret < 0 ? strerror(-o.ret) : "", o.ms);
		if (o.left != 0) {
			/* Past the last allocation: the operation works. */
			ASSERT_LT(0, o.ret);
			break;
		}
		if (o.ret < 0) {
			failed++;
			EXPECT_TRUE(o.ret == -ENOMEM || (eagain && o.ret == -EAGAIN))
				TH_LOG("%s: %s", what, strerror(-o.ret));
		}
	}
	ASSERT_LT(0, failed);
	ASSERT_GE(MAX_NTH, n);
}

/* Every allocation of a registration (@op) fails in turn: ENOMEM each time, nothing left. */
static void registration(struct __test_metadata *_metadata, FIXTURE_DATA(failslab) *self,
			 long (*op)(int n, void *arg), void *existing_process_keyring)
{
	filter(FAILSLAB, self->module);
	fail_each_allocation(_metadata, op, existing_process_keyring, "add_key", 0);
	reset(FAILSLAB);
	ASSERT_TRUE(wait_for(count_keys("keyagent", NULL) == 0, WAIT_MS));
	EXPECT_TRUE(nkeys_back_to(_metadata, self->nkeys));
}

TEST_F(failslab, registration_new_process_keyring)
{
	registration(_metadata, self, op_register, NULL);
}

TEST_F(failslab, registration_existing_process_keyring)
{
	registration(_metadata, self, op_register, (void *)1);
}

/* The same for a scoped registration: its network namespace and the module's index too. */
TEST_F_TIMEOUT(failslab, registration_scoped, 120)
{
	registration(_metadata, self, op_register_scoped, NULL);
}

/*
 * Every allocation of the dispatch of a kernel-originated construction (the
 * kernel rule, a scoped agent) fails in turn: dns_query() gets ENOMEM or
 * EAGAIN at once, or succeeds; nothing is left pending.
 */
TEST_F_TIMEOUT(failslab, kernel_dispatch, 180)
{
	const char *args[] = { "-t", "dns_resolver", "-S", "net", NULL };
	int pending = -1;
	char buf[64];

	if (caller_module_load())
		SKIP(return, "no test caller module (%s)", CALLER_MODULE_PATH);
	/* What earlier tests left in dns_resolver's cache goes too: count from empty. */
	clear_dns_cache();
	self->nkeys = settled_key_users(0, KU_NKEYS);
	ASSERT_EQ(0, agent_start(&self->agent, args));
	filter(FAILSLAB, self->module);
	fail_each_allocation(_metadata, op_kernel_request, NULL, "dns_query", 1);
	reset(FAILSLAB);
	EXPECT_TRUE(wait_for(count_keys("keyagent", &pending) == 1 && pending == 0, WAIT_MS));
	EXPECT_TRUE(wait_for(count_keys(".request_key_auth", NULL) == 0, WAIT_MS));
	ASSERT_LT(0, kernel_query("dns_query", "failslab-after.example", buf, sizeof(buf)));
	EXPECT_STREQ("agent:", buf);
	agent_stop(&self->agent);
	/* The answers stay cached (the agent set no expiry) until the cache is cleared. */
	ASSERT_EQ(0, clear_dns_cache());
	EXPECT_TRUE(nkeys_back_to(_metadata, self->nkeys));
}

/*
 * Every allocation of a dispatch fails in turn: the requester gets ENOMEM or
 * EAGAIN at once, not after request_timeout (an hour here: a construction
 * left pending would hold the test until its time limit).
 */
TEST_F(failslab, dispatch)
{
	int pending = -1;
	long key;
	char buf[64];

	ASSERT_EQ(0, agent_start(&self->agent, NULL));
	filter(FAILSLAB, self->module);
	fail_each_allocation(_metadata, op_request, "dispatch", "request_key", 1);
	reset(FAILSLAB);

	/* The agent holds nothing, no authorisation key is left, and it still answers. */
	EXPECT_TRUE(wait_for(count_keys("keyagent", &pending) == 1 && pending == 0, WAIT_MS));
	EXPECT_TRUE(wait_for(count_keys(".request_key_auth", NULL) == 0, WAIT_MS));
	key = request("user", "failslab-dispatch-after", "after", 0);
	ASSERT_LT(0, key);
	ASSERT_LT(0, payload(key, buf, sizeof(buf)));
	EXPECT_STREQ("agent:after", buf);
	agent_stop(&self->agent);
	EXPECT_TRUE(nkeys_back_to(_metadata, self->nkeys));
}

/* Every allocation of open(/dev/keyagent) fails in turn: ENOMEM, then it opens. */
TEST_F(failslab, channel_open)
{
	filter(FAILSLAB, self->module);
	fail_each_allocation(_metadata, op_channel_open, NULL, "open", 0);
}

/* A channel's registration, and a second channel joining its pool, fail cleanly. */
TEST_F(failslab, registration_channel)
{
	registration(_metadata, self, op_register_channel, NULL);
}

TEST_F(failslab, registration_pool_join)
{
	registration(_metadata, self, op_register_channel, (void *)1);
}

/*
 * Every allocation of a hand-over to a channel fails in turn: ENOMEM at once,
 * nothing left queued or pending; the channel answers afterwards.
 */
TEST_F(failslab, channel_dispatch)
{
	struct chan_agent agent = { .fd = chan_open(0) };
	int pending = -1;

	ASSERT_LE(0, agent.fd);
	ASSERT_LT(0, chan_register(agent.fd, "user", NULL, KEY_SPEC_SESSION_KEYRING));
	ASSERT_EQ(0, pthread_create(&agent.thread, NULL, chan_agent_run, &agent));
	filter(FAILSLAB, self->module);
	fail_each_allocation(_metadata, op_request, "channel", "request_key", 0);
	reset(FAILSLAB);
	EXPECT_TRUE(wait_for(count_keys("keyagent", &pending) == 1 && pending == 0, WAIT_MS));
	EXPECT_TRUE(wait_for(count_keys(".request_key_auth", NULL) == 0, WAIT_MS));
	/* From another thread than the one that registered the channel (EDEADLK). */
	ASSERT_EQ(0, wait_child(requester_start("user", "failslab-channel-after", "after",
						"chan:after", NULL), WAIT_MS));
	agent.stop = 1;
	pthread_join(agent.thread, NULL);
	close(agent.fd);
	EXPECT_TRUE(nkeys_back_to(_metadata, self->nkeys));
}

/* Every allocation of an answer's write fails in turn: ENOMEM, and nothing changed. */
TEST_F(failslab, channel_write)
{
	filter(FAILSLAB, self->module);
	fail_each_allocation(_metadata, op_channel_write, NULL, "write", 0);
	reset(FAILSLAB);
	EXPECT_TRUE(wait_for(count_keys(".request_key_auth", NULL) == 0, WAIT_MS));
	EXPECT_TRUE(nkeys_back_to(_metadata, self->nkeys));
}

/* Every allocation under the reaper fails: constructions still end, nothing is left. */
TEST_F(failslab, reaper)
{
	const char *ignore[] = { "-i", NULL };
	struct range reaper;
	long injected, routed;
	pid_t req[3];
	int i, pending = -1;
	char desc[64], buf[64];

	if (symbol_range("6Broker12reap_pending", 1, &reaper) != 0)
		SKIP(return, "no reap_pending symbol in /proc/kallsyms");
	TH_LOG("reaper code: %#lx-%#lx", reaper.start, reaper.end);
	ASSERT_EQ(0, agent_start(&self->agent, NULL));
	filter(FAILSLAB, reaper);
	knob(FAILSLAB, "times", "100000");
	knob(FAILSLAB, "probability", "100");

	/* Answered constructions. */
	for (i = 0; i < 10; i++) {
		long key;

		snprintf(desc, sizeof(desc), "failslab-reaper-%d", i);
		key = request("user", desc, "r", 0);
		ASSERT_LT(0, key);
		ASSERT_LT(0, payload(key, buf, sizeof(buf)));
		ASSERT_STREQ("agent:r", buf);
	}
	/* Timed out ones. */
	agent_stop(&self->agent);
	ASSERT_EQ(0, agent_start(&self->agent, ignore));
	ASSERT_EQ(0, param_set("request_timeout", "1"));
	for (i = 0; i < 3; i++) {
		snprintf(desc, sizeof(desc), "failslab-reaper-timeout-%d", i);
		EXPECT_EQ(-ETIMEDOUT, request("user", desc, "r", 0));
	}
	ASSERT_EQ(0, param_set("request_timeout", FAR_TIMEOUT));
	/* Orphaned ones. */
	routed = stat_read("routed");
	for (i = 0; i < 3; i++) {
		snprintf(desc, sizeof(desc), "failslab-reaper-orphan-%d", i);
		req[i] = request_in_child(desc, "x");
	}
	ASSERT_TRUE(wait_for(stat_read("routed") == routed + 3, WAIT_MS));
	agent_stop(&self->agent);
	for (i = 0; i < 3; i++)
		EXPECT_EQ(EOWNERDEAD, wait_child(req[i], WAIT_MS));

	injected = 100000 - knob_read(FAILSLAB, "times");
	reset(FAILSLAB);
	TH_LOG("%ld allocations failed under the reaper", injected);
	EXPECT_LT(0, injected);

	/* The authorisation keys it could not unlink go with their constructions. */
	EXPECT_TRUE(wait_for(count_keys(".request_key_auth", NULL) == 0, WAIT_MS));
	EXPECT_TRUE(wait_for(count_keys("keyagent", &pending) == 0 || pending == 0, WAIT_MS));
	EXPECT_TRUE(nkeys_back_to(_metadata, self->nkeys));
}

/* Every allocation of module init fails in turn: the load fails cleanly, or works. */
TEST_F_TIMEOUT(failslab, module_init, 600)
{
	struct range initcall;
	int n, failed = 0, ret;
	long left, key;
	char buf[64];

	ASSERT_EQ(0, symbol_range("do_one_initcall", 0, &initcall));
	ASSERT_EQ(0, module_unload(WAIT_MS));
	filter(FAILSLAB, initcall);
	for (n = 1; n <= MAX_NTH * 8; n++) {
		ASSERT_EQ(0, fail_nth_set(n));
		ret = module_load("");
		left = fail_nth_left();
		fail_nth_set(0);
		TH_LOG("allocation %d: %s, finit_module: %d %s", n,
		       left == 0 ? "failed" : "not reached", ret, ret ? strerror(-ret) : "");
		if (left != 0) {
			ASSERT_EQ(0, ret);
			break;
		}
		if (ret == 0) {
			/* The failure was tolerated (debugfs): the module must work. */
			ASSERT_LT(0, add("keyagent", "user", "40", 2, KEY_SPEC_THREAD_KEYRING));
			ASSERT_EQ(0, module_unload(WAIT_MS));
			continue;
		}
		failed++;
		EXPECT_TRUE(ret == -ENOMEM || ret == -EINVAL);
		EXPECT_FALSE(module_loaded());
		/* The key type did not stay registered. */
		EXPECT_EQ(-ENODEV, add("keyagent", "user", "40", 2, KEY_SPEC_THREAD_KEYRING));
	}
	reset(FAILSLAB);
	ASSERT_LT(0, failed);
	ASSERT_TRUE(module_loaded());

	ASSERT_EQ(0, agent_start(&self->agent, NULL));
	key = request("user", "failslab-init-after", "i", 0);
	ASSERT_LT(0, key);
	ASSERT_LT(0, payload(key, buf, sizeof(buf)));
	EXPECT_STREQ("agent:i", buf);
}

/* Unloading with constructions pending, each allocation of module exit failing in turn. */
TEST_F_TIMEOUT(failslab, module_exit_with_pending, 600)
{
	const char *ignore[] = { "-i", NULL };
	int n, i, injected = 0, ret;
	long left, routed;
	pid_t req[2];
	char desc[64];

	for (n = 1; n <= 16; n++) {
		ASSERT_EQ(0, agent_start(&self->agent, ignore));
		routed = stat_read("routed");
		for (i = 0; i < 2; i++) {
			snprintf(desc, sizeof(desc), "failslab-exit-%d-%d", n, i);
			req[i] = request_in_child(desc, "x");
		}
		ASSERT_TRUE(wait_for(stat_read("routed") == routed + 2, WAIT_MS));

		filter(FAILSLAB, self->module);
		ASSERT_EQ(0, fail_nth_set(n));
		ret = module_unload(WAIT_MS);
		left = fail_nth_left();
		fail_nth_set(0);
		reset(FAILSLAB);
		TH_LOG("allocation %d: %s, delete_module: %d", n,
		       left == 0 ? "failed" : "not reached", ret);
		ASSERT_EQ(0, ret);
		for (i = 0; i < 2; i++)
			EXPECT_EQ(ECANCELED, wait_child(req[i], WAIT_MS));
		agent_stop(&self->agent);
		ASSERT_EQ(0, module_load("request_timeout=" FAR_TIMEOUT));
		if (left != 0)
			break;
		injected++;
	}
	ASSERT_LT(0, injected);
	EXPECT_TRUE(wait_for(count_keys(".request_key_auth", NULL) == 0, WAIT_MS));
	EXPECT_TRUE(nkeys_back_to(_metadata, self->nkeys));
}

/* fail_function on should_failslab, filtered to the registration code, does the same. */
TEST_F(failslab, fail_function_registration)
{
	struct range preparse;
	struct outcome o;

	if (access(FAILFUNC "inject", W_OK))
		SKIP(return, "fail_function not available");
	if (symbol_range("AgentKeyTypeE8preparseB", 1, &preparse) != 0)
		SKIP(return, "no preparse symbol in /proc/kallsyms");
	reset(FAILFUNC);
	ASSERT_EQ(0, write_file(FAILFUNC "inject", "should_failslab"));
	/* -ENOMEM, as the u64 debugfs reads. */
	ASSERT_EQ(0, write_file(FAILFUNC "should_failslab/retval", "0xfffffffffffffff4"));
	filter(FAILFUNC, preparse);
	knob(FAILFUNC, "times", "1000");
	knob(FAILFUNC, "probability", "100");

	o = in_child(0, op_register, NULL);
	EXPECT_EQ(-ENOMEM, o.ret);
	TH_LOG("%ld allocations failed under %#lx-%#lx", 1000 - knob_read(FAILFUNC, "times"),
	       preparse.start, preparse.end);
	EXPECT_LT(0, 1000 - knob_read(FAILFUNC, "times"));

	write_file(FAILFUNC "inject", " ");
	reset(FAILFUNC);
	o = in_child(0, op_register, NULL);
	EXPECT_LT(0, o.ret);
	ASSERT_TRUE(wait_for(count_keys("keyagent", NULL) == 0, WAIT_MS));
	EXPECT_TRUE(nkeys_back_to(_metadata, self->nkeys));
}

TEST_HARNESS_MAIN
