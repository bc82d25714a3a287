/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers shared by the keyagent selftests: starting test agents, requesting
 * keys with the raw syscall (so errno is the kernel's), module parameters and
 * counters.
 */
#ifndef _KEYAGENT_UTIL_H
#define _KEYAGENT_UTIL_H

#include <errno.h>
#include <fcntl.h>
#include <keyutils.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "keyagent.h"

#define AGENT_PATH "/tests/keyagent-test-agent"
#define PARAMS_DIR "/sys/module/keyagent/parameters/"
#define STATS_DIR "/sys/kernel/debug/keyagent/"
#define MODULE_PATH "/lib/keyagent/keyagent.ko"

/*
 * How long a test waits for something it expects to happen: an agent to
 * start, a construction to be routed or released, the garbage collector to
 * remove a key, the module to become free to unload. An idle guest does each
 * of these within a second or two; the tests run under QEMU TCG on shared,
 * loaded machines, so they wait far longer. Waiting only bounds how long a
 * broken test takes to fail: it costs nothing when things work. No test
 * asserts that something happened quickly.
 */
#define WAIT_MS 60000

/*
 * request_timeout for tests whose constructions must end some other way (an
 * answer, the agent's death, an unload, a lowered timeout): an hour, so that
 * a construction that ends by the timeout instead is seen by its errno or by
 * the test's own time limit, never confused with a slow machine.
 */
#define FAR_TIMEOUT "3600"

/*
 * The harness's per-test limit (kselftest_harness.h: 30 s, expanded where
 * each TEST_F is defined): above WAIT_MS, so that a test that fails fails
 * on its own assertion, with its message, rather than by the harness's
 * timeout.
 */
#ifdef TEST_TIMEOUT_DEFAULT
#undef TEST_TIMEOUT_DEFAULT
#define TEST_TIMEOUT_DEFAULT 300
#endif

struct agent {
	pid_t pid;
	key_serial_t key;	/* its keyagent key */
};

static inline long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* request_key(2) itself: returns the serial, or -errno. */
static inline long request(const char *type, const char *desc,
			   const char *callout, key_serial_t dest)
{
	long ret = syscall(__NR_request_key, type, desc, callout, dest);

	return ret < 0 ? -errno : ret;
}

/* add_key(2) itself: returns the serial, or -errno. */
static inline long add(const char *type, const char *desc, const void *data,
		       size_t len, key_serial_t keyring)
{
	long ret = syscall(__NR_add_key, type, desc, data, len, keyring);

	return ret < 0 ? -errno : ret;
}

/* The payload of @key as a string in @buf, or -errno. */
static inline long payload(key_serial_t key, char *buf, size_t size)
{
	long n = keyctl_read(key, buf, size - 1);

	if (n < 0)
		return -errno;
	buf[n < (long)size - 1 ? n : (long)size - 1] = 0;
	return n;
}

/*
 * Starts the test agent with @args (NULL-terminated, after the program name)
 * and waits for its ready line. @setup, if any, runs in the child before exec.
 * Returns 0, or -1 with the agent not running.
 */
static inline int agent_start_with(struct agent *a, const char *const *args,
				   void (*setup)(void))
{
	const char *argv[32] = { AGENT_PATH };
	char line[32] = "";
	struct pollfd pfd;
	int fds[2], n = 1;
	ssize_t len;

	while (args && args[n - 1] && n < 31) {
		argv[n] = args[n - 1];
		n++;
	}
	argv[n] = NULL;
	if (pipe(fds) < 0)
		return -1;
	a->pid = fork();
	if (a->pid < 0)
		return -1;
	if (a->pid == 0) {
		dup2(fds[1], 1);
		close(fds[0]);
		close(fds[1]);
		if (setup)
			setup();
		execv(AGENT_PATH, (char **)argv);
		_exit(127);
	}
	close(fds[1]);
	pfd.fd = fds[0];
	pfd.events = POLLIN;
	len = 0;
	if (poll(&pfd, 1, WAIT_MS) == 1)
		len = read(fds[0], line, sizeof(line) - 1);
	close(fds[0]);
	a->key = len > 0 ? atoi(line) : 0;
	if (a->key <= 0) {
		kill(a->pid, SIGKILL);
		waitpid(a->pid, NULL, 0);
		a->pid = 0;
		return -1;
	}
	return 0;
}

static inline int agent_start(struct agent *a, const char *const *args)
{
	return agent_start_with(a, args, NULL);
}

/* Kills the agent (if running) and reaps it. */
static inline void agent_stop(struct agent *a)
{
	if (a->pid > 0) {
		kill(a->pid, SIGKILL);
		waitpid(a->pid, NULL, 0);
		a->pid = 0;
	}
}

static inline int write_file(const char *path, const char *value)
{
	int fd = open(path, O_WRONLY), ok;

	if (fd < 0)
		return -1;
	ok = write(fd, value, strlen(value)) == (ssize_t)strlen(value);
	close(fd);
	return ok ? 0 : -1;
}

static inline long read_number(const char *path)
{
	char buf[32] = "";
	int fd = open(path, O_RDONLY);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	return n > 0 ? atol(buf) : -1;
}

static inline int param_set(const char *name, const char *value)
{
	char path[128];

	snprintf(path, sizeof(path), PARAMS_DIR "%s", name);
	return write_file(path, value);
}

static inline long stat_read(const char *name)
{
	char path[128];

	snprintf(path, sizeof(path), STATS_DIR "%s", name);
	return read_number(path);
}

static inline int module_loaded(void)
{
	return access(PARAMS_DIR "request_timeout", F_OK) == 0;
}

/* Lines in @path (e.g. an agent's request log), -1 if it cannot be read. */
static inline long count_lines(const char *path)
{
	FILE *f = fopen(path, "r");
	long n = 0;
	int c;

	if (!f)
		return -1;
	while ((c = fgetc(f)) != EOF)
		n += c == '\n';
	fclose(f);
	return n;
}

/* Whether @key can no longer be found (invalidated and collected, or revoked). */
static inline int key_gone(key_serial_t key)
{
	return keyctl_describe(key, NULL, 0) < 0 &&
	       (errno == ENOKEY || errno == EKEYREVOKED);
}

/* Polls @cond every 10 ms for up to @ms milliseconds. */
#define wait_for(cond, ms) ({						\
	long __deadline = now_ms() + (ms);				\
	int __ok;							\
	while (!(__ok = !!(cond)) && now_ms() < __deadline)		\
		usleep(10000);						\
	__ok;								\
})

/* The columns of /proc/key-users: "uid: usage nkeys/nikeys qnkeys/maxkeys qnbytes/maxbytes". */
enum key_users_field {
	KU_USAGE, KU_NKEYS, KU_NIKEYS, KU_QNKEYS, KU_MAXKEYS, KU_QNBYTES, KU_MAXBYTES,
};

/* @field of @uid's line in /proc/key-users, -1 if there is none. */
static inline long key_users(long uid, enum key_users_field field)
{
	FILE *f = fopen("/proc/key-users", "r");
	long v[8], value = -1;
	char line[256];

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, " %ld: %ld %ld/%ld %ld/%ld %ld/%ld", &v[0], &v[1], &v[2], &v[3],
			   &v[4], &v[5], &v[6], &v[7]) == 8 && v[0] == uid)
			value = v[1 + field];
	fclose(f);
	return value;
}

/*
 * How long /proc/key-users must stay unchanged before the key garbage
 * collector is taken to be idle. What is left for it to do is started by
 * timers on the guest's clock (gc_delay, 1 s in the guest, and the 1 s a
 * negative key is cached), which a loaded host does not stretch, and then
 * by its own work, which a loaded host does: 5 s leaves that work several
 * times what it needs.
 */
#define SETTLE_MS 5000

/*
 * @field of @uid once the garbage collector is idle: unchanged for SETTLE_MS
 * (or whatever it is after WAIT_MS). For baselines; to check that a value
 * came back, wait_for() it instead.
 */
static inline long settled_key_users(long uid, enum key_users_field field)
{
	long last = key_users(uid, field), now, since = now_ms(), deadline = since + WAIT_MS;

	while (now_ms() - since < SETTLE_MS && now_ms() < deadline) {
		usleep(100000);
		now = key_users(uid, field);
		if (now != last) {
			last = now;
			since = now_ms();
		}
	}
	return last;
}

/* finit_module() of the keyagent module with @params: 0 or -errno. */
static inline int module_load(const char *params)
{
	int fd = open(MODULE_PATH, O_RDONLY | O_CLOEXEC), ret;

	if (fd < 0)
		return -errno;
	ret = syscall(__NR_finit_module, fd, params, 0) < 0 ? -errno : 0;
	close(fd);
	return ret;
}

/*
 * delete_module(), retrying for up to @ms while constructions hold the module
 * (EAGAIN, EBUSY): 0 or -errno.
 */
static inline int module_unload(long ms)
{
	long deadline = now_ms() + ms;

	for (;;) {
		if (syscall(__NR_delete_module, "keyagent", O_NONBLOCK) == 0)
			return 0;
		if (errno != EAGAIN && errno != EBUSY && errno != EWOULDBLOCK)
			return -errno;
		if (now_ms() >= deadline)
			return -ETIMEDOUT;
		usleep(10000);
	}
}

/* The module's core (text and data), from /proc/modules. */
static inline int module_range(unsigned long *start, unsigned long *end)
{
	FILE *f = fopen("/proc/modules", "r");
	char line[256], name[64];
	unsigned long size, base;
	int found = 0;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%63s %lu %*d %*s %*s %lx", name, &size, &base) == 3 &&
		    strcmp(name, "keyagent") == 0 && base) {
			*start = base;
			*end = base + size;
			found = 1;
		}
	fclose(f);
	return found ? 0 : -1;
}

/* A request in a child: its exit status is the errno it got (0: a key). */
static inline pid_t request_in_child(const char *desc, const char *callout)
{
	pid_t pid = fork();

	if (pid == 0) {
		long ret = request("user", desc, callout, 0);

		_exit(ret < 0 ? -ret : 0);
	}
	return pid;
}

/* Waits up to @ms for @pid; returns its exit status, or -1 if it is still running. */
static inline int wait_child(pid_t pid, long ms)
{
	int status;

	if (!wait_for(waitpid(pid, &status, WNOHANG) == pid, ms)) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return -1;
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

#define CALLER_MODULE_PATH "/lib/keyagent/keyagent_test_caller.ko"
#define CALLER_DIR "/sys/kernel/debug/keyagent_test_caller/"

/* Loads the test module that makes the kernel's own requests: 0 or -errno. */
static inline int caller_module_load(void)
{
	int fd, ret;

	if (access(CALLER_DIR "dns_query", F_OK) == 0)
		return 0;
	fd = open(CALLER_MODULE_PATH, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ret = syscall(__NR_finit_module, fd, "", 0) < 0 ? -errno : 0;
	close(fd);
	return ret == -EEXIST ? 0 : ret;
}

/*
 * Has the kernel look @name up through the test module's @file (dns_query,
 * dns_query_kthread, request, request_kthread): the answer's length with the
 * answer in @buf, or -errno.
 */
static inline long kernel_query(const char *file, const char *name, char *buf, size_t size)
{
	char path[128];
	long n;
	int fd;

	snprintf(path, sizeof(path), CALLER_DIR "%s", file);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, name, strlen(name)) < 0) {
		n = -errno;
		close(fd);
		return n;
	}
	n = read(fd, buf, size - 1);
	n = n < 0 ? -errno : n;
	buf[n > 0 ? n : 0] = 0;
	close(fd);
	return n;
}

/* ----------------------------------------------------------------------
 * The channel, /dev/keyagent (include/keyagent.h).
 */
#define ALIGN8(n) (((n) + 7) & ~(size_t)7)

/* Opens a channel with @flags besides O_RDWR | O_CLOEXEC: the descriptor, or -errno. */
static inline int chan_open(int flags)
{
	int fd = open(KEYAGENT_DEVICE, O_RDWR | O_CLOEXEC | flags);

	return fd < 0 ? -errno : fd;
}

/*
 * Registers channel @fd for @type in @keyring with the payload "fd N", then
 * @suffix if any (" net"): the agent key, or -errno.
 */
static inline long chan_register(int fd, const char *type, const char *suffix,
				 key_serial_t keyring)
{
	char payload[64];

	snprintf(payload, sizeof(payload), "fd %d%s", fd, suffix ? suffix : "");
	return add("keyagent", type, payload, strlen(payload), keyring);
}

/* A request record, parsed; the strings point into the buffer read. */
struct chan_req {
	long size, version, flags, uid, gid;
	int serial, pid;
	const char *type, *desc, *callout;
	long type_len, desc_len, callout_len;
};

/* The size of the record of a request for @type, @desc, @callout. */
static inline size_t chan_req_size(const char *type, const char *desc, const char *callout)
{
	return ALIGN8(sizeof(struct keyagent_request) + strlen(type) + strlen(desc) +
		      strlen(callout) + 3);
}

/*
 * Parses the record at @buf, of which @n bytes were read: its size, or -1 if
 * it is not a well-formed record (sizes, version, NULs, zero padding).
 */
static inline long chan_parse(const void *buf, size_t n, struct chan_req *r)
{
	const unsigned char *p = buf;
	struct keyagent_request h;
	size_t used, i;

	if (n < sizeof(h))
		return -1;
	memcpy(&h, buf, sizeof(h));
	used = sizeof(h) + (size_t)h.type_len + h.description_len + h.callout_len + 3;
	if (h.size % KEYAGENT_RECORD_ALIGN || h.size > n || h.size > KEYAGENT_REQUEST_MAX ||
	    h.size != ALIGN8(used) || h.version != KEYAGENT_ABI_VERSION)
		return -1;
	r->size = h.size;
	r->version = h.version;
	r->flags = h.flags;
	r->serial = h.serial;
	r->pid = h.pid;
	r->uid = h.uid;
	r->gid = h.gid;
	r->type_len = h.type_len;
	r->desc_len = h.description_len;
	r->callout_len = h.callout_len;
	r->type = (const char *)p + sizeof(h);
	r->desc = r->type + h.type_len + 1;
	r->callout = r->desc + h.description_len + 1;
	if (r->type[h.type_len] || r->desc[h.description_len] || r->callout[h.callout_len] ||
	    strlen(r->type) != h.type_len || strlen(r->desc) != h.description_len ||
	    strlen(r->callout) != h.callout_len)
		return -1;
	for (i = used; i < h.size; i++)
		if (p[i])
			return -1;
	return h.size;
}

/* Appends an answer record to @buf: its size. */
static inline size_t chan_answer(void *buf, unsigned int op, int serial, unsigned int error,
				 unsigned int timeout, const void *data, size_t len)
{
	struct keyagent_answer a = {
		.size = ALIGN8(sizeof(a) + len), .version = KEYAGENT_ABI_VERSION, .op = op,
		.serial = serial, .error = error, .timeout = timeout, .payload_len = len,
	};

	memset(buf, 0, a.size);
	memcpy(buf, &a, sizeof(a));
	if (len)
		memcpy((char *)buf + sizeof(a), data, len);
	return a.size;
}

/* An instantiate record with the string @text as payload. */
static inline size_t chan_instantiate(void *buf, int serial, const char *text)
{
	return chan_answer(buf, KEYAGENT_OP_INSTANTIATE, serial, 0, 0, text, strlen(text));
}

/* Waits up to @ms for the channel to be readable, then read(): bytes or -errno. */
static inline long chan_read(int fd, void *buf, size_t size, long ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	long n;

	if (poll(&pfd, 1, ms) != 1)
		return -ETIMEDOUT;
	n = read(fd, buf, size);
	return n < 0 ? -errno : n;
}

/* write(): bytes or -errno. */
static inline long chan_write(int fd, const void *buf, size_t len)
{
	long n = write(fd, buf, len);

	return n < 0 ? -errno : n;
}

/*
 * Reads records until @n are parsed into @out (strings in @store), for up to
 * @ms: how many were read, -1 if a record is malformed.
 */
static inline int chan_collect(int fd, struct chan_req *out, int n, char *store, size_t size,
			       long ms)
{
	long deadline = now_ms() + ms, got, off = 0, pos;
	int count = 0;

	while (count < n && now_ms() < deadline) {
		if (size - off < KEYAGENT_REQUEST_MAX)
			return -1;
		got = chan_read(fd, store + off, KEYAGENT_REQUEST_MAX, deadline - now_ms());
		if (got == -ETIMEDOUT || got == -EINTR)
			continue;
		if (got <= 0)
			return -1;
		for (pos = 0; pos < got && count < n; count++) {
			long len = chan_parse(store + off + pos, got - pos, &out[count]);

			if (len < 0)
				return -1;
			pos += len;
		}
		if (pos != got)
			return -1;
		off += got;
	}
	return count;
}

/* The number after @field (" sent ", " pending ") in @key's /proc/keys line, or -1. */
static inline long proc_keys_field(key_serial_t key, const char *field)
{
	FILE *f = fopen("/proc/keys", "r");
	char line[512], *p;
	long value = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strtoul(line, NULL, 16) == (unsigned long)key && (p = strstr(line, field)))
			value = atol(p + strlen(field));
	fclose(f);
	return value;
}

/* @key's line of /proc/keys in @buf: 0, or -1 if there is none. */
static inline int proc_keys_line(key_serial_t key, char *buf, size_t size)
{
	FILE *f = fopen("/proc/keys", "r");
	int found = -1;

	if (!f)
		return -1;
	while (fgets(buf, size, f))
		if (strtoul(buf, NULL, 16) == (unsigned long)key) {
			found = 0;
			break;
		}
	fclose(f);
	if (found)
		buf[0] = 0;
	return found;
}

/*
 * A requester in a child, with no descriptor but 0-2 (so that it holds no
 * channel): request_key(@type, @desc, @callout). Its exit status is the errno
 * it got, 0 if it got a key (whose payload is @expect, if given: else 250).
 * @setup, if any, runs first (exit 251 if it fails).
 */
static inline pid_t requester_start(const char *type, const char *desc, const char *callout,
				    const char *expect, int (*setup)(void))
{
	pid_t pid = fork();

	if (pid == 0) {
		char buf[256];
		long key;

		syscall(__NR_close_range, 3, ~0U, 0);
		if (setup && setup())
			_exit(251);
		key = request(type, desc, callout, 0);
		if (key < 0)
			_exit(-key);
		if (expect && (payload(key, buf, sizeof(buf)) < 0 || strcmp(buf, expect)))
			_exit(250);
		_exit(0);
	}
	return pid;
}

#endif /* _KEYAGENT_UTIL_H */
