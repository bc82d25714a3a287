// SPDX-License-Identifier: GPL-2.0
/*
 * The channel, /dev/keyagent (include/keyagent.h): registration by
 * descriptor, the request records read(), the answers written, poll(), the
 * channel's death with its last reference, and its sharing through fork()
 * and SCM_RIGHTS.
 *
 * Requesters are children that hold no channel (requester_start()); their
 * exit status is the errno request_key() gave them, 0 for a key with the
 * expected payload. The constructions' own timeout is an hour, so that an
 * answer, an error or the channel's death is never confused with it.
 */
#include <grp.h>
#include <pthread.h>
#include <sys/socket.h>

#include "kselftest_harness.h"
#include "keyagent_util.h"

/* Records read, then answers written: big enough for the largest write tested. */
static char store[8 * KEYAGENT_REQUEST_MAX];
static char answers[KEYAGENT_WRITE_MAX + 4096];
/* Payloads up to one byte more than KEYAGENT_PAYLOAD_MAX. */
static char big[KEYAGENT_PAYLOAD_MAX + 1];

/*
 * Two and a half days: /proc/keys shows "2d" for the first twelve hours (it
 * rounds the seconds left down, and shows "2d" for exactly two days too).
 */
#define LONG_TIMEOUT (2 * 86400 + 43200)

/* The expiry column of @key in /proc/keys ("perm", "1d", ...) in @buf, or "". */
static const char *expiry(key_serial_t key, char *buf, size_t size)
{
	char line[512], col[16] = "";

	if (proc_keys_line(key, line, sizeof(line)) == 0)
		sscanf(line, "%*x %*s %*d %15s", col);
	snprintf(buf, size, "%s", col);
	return buf;
}

/*
 * The serial of the key of @type and @desc under construction (flag U in
 * /proc/keys), or -1. Root sees the keys of the tests before too: the
 * descriptions a test looks up are its own.
 */
static long proc_keys_find(const char *type, const char *desc)
{
	FILE *f = fopen("/proc/keys", "r");
	char line[512], flags[16], t[64], d[256];
	unsigned int serial;
	long found = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%x %15s %*d %*s %*x %*d %*d %63s %255[^:\n]", &serial, flags, t,
			   d) == 4 && strchr(flags, 'U') && strcmp(t, type) == 0 &&
		    strcmp(d, desc) == 0)
			found = serial;
	fclose(f);
	return found;
}

/* Whether @key's line in /proc/keys contains @text. */
static int proc_keys_has(key_serial_t key, const char *text)
{
	char line[512];

	return proc_keys_line(key, line, sizeof(line)) == 0 && strstr(line, text) != NULL;
}

/*
 * Whether the agent of @key is dead: /proc/keys says so, or the key is
 * already gone (a dead agent's key is invalidated).
 */
static int agent_dead(key_serial_t key)
{
	return proc_keys_has(key, " chan dead") || key_gone(key);
}

FIXTURE(chan) {
	int fd;
	key_serial_t key;	/* the channel's registration for "user" */
	pid_t pids[16];
	int npids;
};

FIXTURE_SETUP(chan)
{
	self->fd = -1;
	self->npids = 0;
	if (!module_loaded())
		SKIP(return, "keyagent module not loaded");
	ASSERT_EQ(0, access(KEYAGENT_DEVICE, R_OK | W_OK)) TH_LOG("%s: %m", KEYAGENT_DEVICE);
	ASSERT_LT(0, keyctl_join_session_keyring(NULL));
	ASSERT_EQ(0, param_set("request_timeout", FAR_TIMEOUT));
	self->fd = chan_open(0);
	ASSERT_LE(0, self->fd);
	self->key = chan_register(self->fd, "user", NULL, KEY_SPEC_SESSION_KEYRING);
	ASSERT_LT(0, self->key);
}

FIXTURE_TEARDOWN(chan)
{
	int i;

	if (self->fd >= 0)
		close(self->fd);
	for (i = 0; i < self->npids; i++)
		if (waitpid(self->pids[i], NULL, WNOHANG) == 0) {
			kill(self->pids[i], SIGKILL);
			waitpid(self->pids[i], NULL, 0);
		}
	if (!module_loaded())
		module_load("");
	param_set("request_timeout", "30");
	param_set("global_types", "\n");
}

/* A child, killed and reaped at teardown if still running. */
static pid_t track(FIXTURE_DATA(chan) *self, pid_t pid)
{
	if (pid > 0 && self->npids < 16)
		self->pids[self->npids++] = pid;
	return pid;
}

static pid_t spawn(FIXTURE_DATA(chan) *self, const char *desc, const char *callout,
		   const char *expect)
{
	return track(self, requester_start("user", desc, callout, expect, NULL));
}

/* Whether the channel's agent key has handed over @n constructions. */
static int sent(key_serial_t key, long n)
{
	return wait_for(proc_keys_field(key, " sent ") >= n, WAIT_MS);
}

/*
 * One construction is read as one record: serial, requester, type,
 * description, callout; instantiating it gives the requester the key with
 * that payload, with no expiry (timeout 0).
 */
TEST_F(chan, record_fields_and_instantiate)
{
	struct chan_req r;
	char buf[16];
	size_t len;
	pid_t pid;
	long n;

	pid = spawn(self, "ct-record", "hello", "chan:hello");
	ASSERT_LT(0, pid);
	n = chan_read(self->fd, store, KEYAGENT_REQUEST_MAX, WAIT_MS);
	ASSERT_EQ((long)chan_req_size("user", "ct-record", "hello"), n);
	ASSERT_EQ(n, chan_parse(store, n, &r));
	ASSERT_EQ(KEYAGENT_ABI_VERSION, r.version);
	ASSERT_EQ(proc_keys_find("user", "ct-record"), r.serial);
	ASSERT_EQ(pid, r.pid);
	ASSERT_EQ(0, r.uid);
	ASSERT_EQ(0, r.gid);
	ASSERT_EQ(0, r.flags & KEYAGENT_REQUEST_KERNEL);
	ASSERT_EQ(4, r.type_len);
	ASSERT_STREQ("user", r.type);
	ASSERT_STREQ("ct-record", r.desc);
	ASSERT_EQ(5, r.callout_len);
	ASSERT_STREQ("hello", r.callout);

	len = chan_instantiate(answers, r.serial, "chan:hello");
	ASSERT_EQ(40, (long)len);
	ASSERT_EQ((long)len, chan_write(self->fd, answers, len));
	ASSERT_EQ(0, wait_child(pid, WAIT_MS));
	ASSERT_EQ(r.serial, keyctl_search(KEY_SPEC_SESSION_KEYRING, "user", "ct-record", 0));
	ASSERT_STREQ("perm", expiry(r.serial, buf, sizeof(buf)));
	/* The construction has ended: its serial is no longer answerable. */
	ASSERT_EQ(-ENOENT, chan_write(self->fd, answers, len));
	ASSERT_TRUE(wait_for(proc_keys_has(self->key, " sent 1 pending 0"), WAIT_MS));
}

static int become_user_1000(void)
{
	return setgroups(0, NULL) || setresgid(1001, 1001, 1001) || setresuid(1000, 1000, 1000);
}

/* The requester's fsuid and fsgid, not the channel's. */
TEST_F(chan, record_ids_of_unprivileged_requester)
{
	struct chan_req r;
	size_t len;
	pid_t pid;
	long n;

	pid = track(self, requester_start("user", "ct-ids", "x", "ok", become_user_1000));
	ASSERT_LT(0, pid);
	n = chan_read(self->fd, store, KEYAGENT_REQUEST_MAX, WAIT_MS);
	ASSERT_LT(0, n);
	ASSERT_EQ(n, chan_parse(store, n, &r));
	ASSERT_EQ(pid, r.pid);
	ASSERT_EQ(1000, r.uid);
	ASSERT_EQ(1001, r.gid);
	ASSERT_EQ(0, r.flags & KEYAGENT_REQUEST_KERNEL);
	len = chan_instantiate(answers, r.serial, "ok");
	ASSERT_EQ((long)len, chan_write(self->fd, answers, len));
	ASSERT_EQ(0, wait_child(pid, WAIT_MS));
}

/* An answer's timeout is the key's lifetime. */
TEST_F(chan, instantiate_timeout_sets_expiry)
{
	struct chan_req r;
	char buf[16];
	size_t len;
	pid_t pid;

	pid = spawn(self, "ct-expiry", "x", "timed");
	ASSERT_EQ(1, chan_collect(self->fd, &r, 1, store, sizeof(store), WAIT_MS));
	len = chan_answer(answers, KEYAGENT_OP_INSTANTIATE, r.serial, 0, LONG_TIMEOUT, "timed", 5);
	ASSERT_EQ((long)len, chan_write(self->fd, answers, len));
	ASSERT_EQ(0, wait_child(pid, WAIT_MS));
	ASSERT_STREQ("2d", expiry(r.serial, buf, sizeof(buf)));
}

/*
 * A rejection reaches the requester with its errno; the negative key lives
 * for the answer's timeout, answering the next request itself.
 */
TEST_F(chan, reject_reaches_requester)
{
	struct chan_req r;
	char buf[16];
	size_t len;
	pid_t pid;

	pid = spawn(self, "ct-reject", "x", NULL);
	ASSERT_EQ(1, chan_collect(self->fd, &r, 1, store, sizeof(store), WAIT_MS));
	len = chan_answer(answers, KEYAGENT_OP_REJECT, r.serial, EKEYREJECTED, LONG_TIMEOUT, NULL, 0);
	ASSERT_EQ(24, (long)len);
	ASSERT_EQ((long)len, chan_write(self->fd, answers, len));
	ASSERT_EQ(EKEYREJECTED, wait_child(pid, WAIT_MS));
	ASSERT_STREQ("2d", expiry(r.serial, buf, sizeof(buf)));

	/* The negative key answers: nothing reaches the channel. */
	pid = spawn(self, "ct-reject", "x", NULL);
	ASSERT_EQ(EKEYREJECTED, wait_child(pid, WAIT_MS));
	ASSERT_EQ(0, fcntl(self->fd, F_SETFL, O_NONBLOCK));
	ASSERT_EQ(-1, read(self->fd, store, KEYAGENT_REQUEST_MAX));
	ASSERT_EQ(EAGAIN, errno);
	ASSERT_EQ(1, proc_keys_field(self->key, " sent "));
}

/* Any errno up to 4095, as keyctl_reject(). */
TEST_F(chan, reject_with_other_errors)
{
	static const int errs[] = { EACCES, 1, 4095 };
	struct chan_req r;
	unsigned int i;
	char desc[32];
	size_t len;
	pid_t pid;

	for (i = 0; i < 3; i++) {
		snprintf(desc, sizeof(desc), "ct-reject-%u", i);
		pid = spawn(self, desc, "x", NULL);
		ASSERT_EQ(1, chan_collect(self->fd, &r, 1, store, sizeof(store), WAIT_MS));
		len = chan_answer(answers, KEYAGENT_OP_REJECT, r.serial, errs[i], LONG_TIMEOUT, NULL, 0);
		ASSERT_EQ((long)len, chan_write(self->fd, answers, len));
		/* An exit status holds only 8 bits: see the negative key too. */
		ASSERT_EQ(errs[i] & 0xff, wait_child(pid, WAIT_MS));
		ASSERT_EQ(-errs[i], keyctl_read(r.serial, NULL, 0) < 0 ? -errno : 0)
			TH_LOG("error %d", errs[i]);
	}
	ASSERT_EQ(3, proc_keys_field(self->key, " sent "));
}

TEST_F(chan, negate_reaches_requester)
{
	struct chan_req r;
	size_t len;
	pid_t pid;

	pid = spawn(self, "ct-negate", "x", NULL);
	ASSERT_EQ(1, chan_collect(self->fd, &r, 1, store, sizeof(store), WAIT_MS));
	len = chan_answer(answers, KEYAGENT_OP_NEGATE, r.serial, 0, LONG_TIMEOUT, NULL, 0);
	ASSERT_EQ((long)len, chan_write(self->fd, answers, len));
	ASSERT_EQ(ENOKEY, wait_child(pid, WAIT_MS));
	pid = spawn(self, "ct-negate", "x", NULL);
	ASSERT_EQ(ENOKEY, wait_child(pid, WAIT_MS));
	ASSERT_EQ(1, proc_keys_field(self->key, " sent "));
}

#define BATCH 4

/*
 * Several waiting records come in one read() when the buffer holds them, as
 * many as fit; one write() answers them all.
 */
TEST_F(chan, batch_read_and_write)
{
	struct chan_req r[BATCH];
	size_t rec = chan_req_size("user", "ct-batch-0", "cb-0"), len = 0;
	pid_t pids[BATCH];
	char desc[32], callout[16], expect[32];
	long n, pos;
	int i;

	for (i = 0; i < BATCH; i++) {
		snprintf(desc, sizeof(desc), "ct-batch-%d", i);
		snprintf(callout, sizeof(callout), "cb-%d", i);
		snprintf(expect, sizeof(expect), "batch:%d", i);
		pids[i] = spawn(self, desc, callout, expect);
		ASSERT_LT(0, pids[i]);
	}
	ASSERT_TRUE(sent(self->key, BATCH));

	/* Room for two and a half: two. */
	n = chan_read(self->fd, store, 2 * rec + rec / 2, WAIT_MS);
	ASSERT_EQ((long)(2 * rec), n);
	/* Room for all: the other two. */
	n = chan_read(self->fd, store + 2 * rec, KEYAGENT_REQUEST_MAX, WAIT_MS);
	ASSERT_EQ((long)(2 * rec), n);
	for (i = 0, pos = 0; i < BATCH; i++, pos += rec)
		ASSERT_EQ((long)rec, chan_parse(store + pos, 4 * rec - pos, &r[i]));

	for (i = 0; i < BATCH; i++) {
		int id = r[i].desc[strlen(r[i].desc) - 1] - '0';

		ASSERT_EQ(pids[id], r[i].pid);
		snprintf(expect, sizeof(expect), "batch:%d", id);
		len += chan_instantiate(answers + len, r[i].serial, expect);
	}
	ASSERT_EQ((long)len, chan_write(self->fd, answers, len));
	for (i = 0; i < BATCH; i++)
		ASSERT_EQ(0, wait_child(pids[i], WAIT_MS)) TH_LOG("requester %d", i);

	/* And with a buffer for all, all at once. */
	for (i = 0; i < BATCH; i++) {
		snprintf(desc, sizeof(desc), "ct-batch-%d", i + 4);
		snprintf(callout, sizeof(callout), "cb-%d", i + 4);
		pids[i] = spawn(self, desc, callout, "all");
	}
	ASSERT_TRUE(sent(self->key, 2 * BATCH));
	n = chan_read(self->fd, store, KEYAGENT_REQUEST_MAX, WAIT_MS);
	ASSERT_EQ((long)(BATCH * rec), n);
	for (i = 0, pos = 0, len = 0; i < BATCH; i++, pos += rec) {
		ASSERT_EQ((long)rec, chan_parse(store + pos, n - pos, &r[i]));
		len += chan_instantiate(answers + len, r[i].serial, "all");
	}
	ASSERT_EQ((long)len, chan_write(self->fd, answers, len));
	for (i = 0; i < BATCH; i++)
		ASSERT_EQ(0, wait_child(pids[i], WAIT_MS)) TH_LOG("requester %d", i);
}

/* A buffer too small for the record: EINVAL, and the record is still there. */
TEST_F(chan, small_buffer_loses_nothing)
{
	size_t rec = chan_req_size("user", "ct-small", "callout");
	struct pollfd pfd = { .fd = self->fd, .events = POLLIN };
	struct chan_req r;
	size_t len;
	pid_t pid;

	pid = spawn(self, "ct-small", "callout", "small");
	ASSERT_TRUE(sent(self->key, 1));
	ASSERT_EQ(-1, read(self->fd, store, 0));
	ASSERT_EQ(EINVAL, errno);
	ASSERT_EQ(-1, read(self->fd, store, sizeof(struct keyagent_request)));
	ASSERT_EQ(EINVAL, errno);
	ASSERT_EQ(-1, read(self->fd, store, rec - 1));
	ASSERT_EQ(EINVAL, errno);
	ASSERT_EQ(1, poll(&pfd, 1, 0));
	ASSERT_EQ(POLLIN, pfd.revents & POLLIN);
	ASSERT_EQ((long)rec, read(self->fd, store, rec));
	ASSERT_EQ((long)rec, chan_parse(store, rec, &r));
	ASSERT_STREQ("ct-small", r.desc);
	len = chan_instantiate(answers, r.serial, "small");
	ASSERT_EQ((long)len, chan_write(self->fd, answers, len));
	ASSERT_EQ(0, wait_child(pid, WAIT_MS));
}

/* The longest description and callout request_key() takes fit KEYAGENT_REQUEST_MAX. */
TEST_F(chan, longest_strings)
{
	static char desc[4096], callout[4096];
	struct chan_req r;
	size_t len;
	pid_t pid;
	long n;

	memset(desc, 'd', sizeof(desc) - 1);
	memset(callout, 'c', sizeof(callout) - 1);
	pid = spawn(self, desc, callout, "long");
	n = chan_read(self->fd, store, KEYAGENT_REQUEST_MAX, WAIT_MS);
	ASSERT_EQ((long)chan_req_size("user", desc, callout), n);
	ASSERT_EQ(n, chan_parse(store, n, &r));
	ASSERT_EQ(4095, r.desc_len);
	ASSERT_EQ(4095, r.callout_len);
	ASSERT_EQ(0, strcmp(desc, r.desc));
	ASSERT_EQ(0, strcmp(callout, r.callout));
	len = chan_instantiate(answers, r.serial, "long");
	ASSERT_EQ((long)len, chan_write(self->fd, answers, len));
	ASSERT_EQ(0, wait_child(pid, WAIT_MS));
}

/* An empty callout is a callout of length 0. */
TEST_F(chan, empty_callout)
{
	struct chan_req r;
	size_t len;
	pid_t pid;
	long n;

	pid = spawn(self, "ct-empty", "", "empty");
	n = chan_read(self->fd, store, KEYAGENT_REQUEST_MAX, WAIT_MS);
	ASSERT_EQ((long)chan_req_size("user", "ct-empty", ""), n);
	ASSERT_EQ(n, chan_parse(store, n, &r));
	ASSERT_EQ(0, r.callout_len);
	len = chan_instantiate(answers, r.serial, "empty");
	ASSERT_EQ((long)len, chan_write(self->fd, answers, len));
	ASSERT_EQ(0, wait_child(pid, WAIT_MS));
}

/* O_NONBLOCK with nothing queued: EAGAIN, from open() or fcntl(). */
TEST_F(chan, nonblocking_empty_read)
{
	int fd = chan_open(O_NONBLOCK);

	ASSERT_LE(0, fd);
	ASSERT_EQ(-1, read(fd, store, KEYAGENT_REQUEST_MAX));
	ASSERT_EQ(EAGAIN, errno);
	close(fd);
	ASSERT_EQ(0, fcntl(self->fd, F_SETFL, O_NONBLOCK));
	ASSERT_EQ(-1, read(self->fd, store, KEYAGENT_REQUEST_MAX));
	ASSERT_EQ(EAGAIN, errno);
}

/* poll(): EPOLLOUT always, EPOLLIN while a record waits (and not once it is read). */
TEST_F(chan, poll_readiness)
{
	struct pollfd pfd = { .fd = self->fd, .events = POLLIN | POLLOUT };
	struct chan_req r;
	size_t len;
	pid_t pid;

	ASSERT_EQ(1, poll(&pfd, 1, 0));
	ASSERT_EQ(POLLOUT, pfd.revents);
	pid = spawn(self, "ct-poll", "x", "polled");
	pfd.events = POLLIN;
	ASSERT_EQ(1, poll(&pfd, 1, WAIT_MS));
	pfd.events = POLLIN | POLLOUT;
	ASSERT_EQ(1, poll(&pfd, 1, 0));
	ASSERT_EQ(POLLIN | POLLOUT, pfd.revents);
	ASSERT_EQ(1, chan_collect(self->fd, &r, 1, store, sizeof(store), WAIT_MS));
	ASSERT_EQ(1, poll(&pfd, 1, 0));
	ASSERT_EQ(POLLOUT, pfd.revents);
	len = chan_instantiate(answers, r.serial, "polled");
	ASSERT_EQ((long)len, chan_write(self->fd, answers, len));
	ASSERT_EQ(0, wait_child(pid, WAIT_MS));
	ASSERT_EQ(1, poll(&pfd, 1, 0));
	ASSERT_EQ(POLLOUT, pfd.revents);
}

struct blocked_read {
	int fd;
	long n;
	char buf[KEYAGENT_REQUEST_MAX];
};

static void *read_thread(void *arg)
{
	struct blocked_read *b = arg;

	b->n = read(b->fd, b->buf, sizeof(b->buf));
	if (b->n < 0)
		b->n = -errno;
	return NULL;
}

/* A blocking read() waits for the next record. */
TEST_F(chan, blocking_read_waits_for_record)
{
	static struct blocked_read b;
	struct timespec until;
	struct chan_req r;
	pthread_t t;
	size_t len;
	pid_t pid;

	b.fd = self->fd;
	b.n = 1;
	ASSERT_EQ(0, pthread_create(&t, NULL, read_thread, &b));
	/* Give it time to block; it returns only with a record (none is queued). */
	usleep(200000);
	ASSERT_EQ(1, b.n);
	pid = spawn(self, "ct-blocked", "x", "woken");
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += WAIT_MS / 1000;
	ASSERT_EQ(0, pthread_timedjoin_np(t, NULL, &until));
	ASSERT_EQ((long)chan_req_size("user", "ct-blocked", "x"), b.n);
	ASSERT_EQ(b.n, chan_parse(b.buf, b.n, &r));
	len = chan_instantiate(answers, r.serial, "woken");
	ASSERT_EQ((long)len, chan_write(self->fd, answers, len));
	ASSERT_EQ(0, wait_child(pid, WAIT_MS));
}

/*
 * A write of exactly KEYAGENT_WRITE_MAX is taken; records are applied in
 * order, and one the key type refuses (a user key's payload is at most 32767
 * bytes) ends the write with the bytes applied before it, or its error if it
 * is the first. What was refused can still be answered.
 */
TEST_F(chan, write_max_applied_in_order)
{
	struct chan_req r[3];
	pid_t pids[3];
	size_t len, first;
	char desc[32];
	int i;

	for (i = 0; i < 3; i++) {
		snprintf(desc, sizeof(desc), "ct-max-%d", i);
		pids[i] = spawn(self, desc, "x", "fine");
		ASSERT_EQ(1, chan_collect(self->fd, &r[i], 1, store + i * KEYAGENT_REQUEST_MAX,
					  KEYAGENT_REQUEST_MAX, WAIT_MS));
	}
	memset(big, 'p', sizeof(big));
	first = chan_instantiate(answers, r[0].serial, "fine");
	len = first;
	len += chan_answer(answers + len, KEYAGENT_OP_INSTANTIATE, r[1].serial, 0, 0, big,
			   KEYAGENT_PAYLOAD_MAX);
	len += chan_answer(answers + len, KEYAGENT_OP_INSTANTIATE, r[2].serial, 0, 0, big,
			   KEYAGENT_WRITE_MAX - len - sizeof(struct keyagent_answer));
	ASSERT_EQ(KEYAGENT_WRITE_MAX, (long)len);
	ASSERT_EQ((long)first, chan_write(self->fd, answers, len));
	ASSERT_EQ(0, wait_child(pids[0], WAIT_MS));

	/* Refused first: its error. */
	len = chan_answer(answers, KEYAGENT_OP_INSTANTIATE, r[1].serial, 0, 0, big, 32768);
	ASSERT_EQ(-EINVAL, chan_write(self->fd, answers, len));
	/* Both still answerable. */
	len = chan_instantiate(answers, r[1].serial, "fine");
	len += chan_instantiate(answers + len, r[2].serial, "fine");
	ASSERT_EQ((long)len, chan_write(self->fd, answers, len));
	ASSERT_EQ(0, wait_child(pids[1], WAIT_MS));
	ASSERT_EQ(0, wait_child(pids[2], WAIT_MS));
}

/* Closing with a construction read and not answered: EOWNERDEAD at once. */
TEST_F(chan, close_fails_read_construction)
{
	struct chan_req r;
	pid_t pid;

	pid = spawn(self, "ct-close-read", "x", NULL);
	ASSERT_EQ(1, chan_collect(self->fd, &r, 1, store, sizeof(store), WAIT_MS));
	ASSERT_EQ(0, close(self->fd));
	self->fd = -1;
	ASSERT_EQ(EOWNERDEAD, wait_child(pid, WAIT_MS));
	ASSERT_TRUE(wait_for(agent_dead(self->key), WAIT_MS));
	/* The dead agent is passed over: /sbin/request-key answers. */
	pid = spawn(self, "ct-close-after", "cb", "request-key:cb");
	ASSERT_EQ(0, wait_child(pid, WAIT_MS));
}

/* Closing with a construction queued and not read: EOWNERDEAD at once too. */
TEST_F(chan, close_fails_unread_construction)
{
	pid_t pid;

	pid = spawn(self, "ct-close-unread", "x", NULL);
	ASSERT_TRUE(sent(self->key, 1));
	ASSERT_EQ(0, close(self->fd));
	self->fd = -1;
	ASSERT_EQ(EOWNERDEAD, wait_child(pid, WAIT_MS));
	pid = spawn(self, "ct-close-after", "cb", "request-key:cb");
	ASSERT_EQ(0, wait_child(pid, WAIT_MS));
}

/* /proc/keys: the registering process, "chan", alive, then dead once closed. */
TEST_F(chan, proc_keys_describes_channel)
{
	char want[128], line[512];

	snprintf(want, sizeof(want), "keyagent  user: pid %d chan alive sent 0 pending 0 scope session",
		 getpid());
	ASSERT_EQ(0, proc_keys_line(self->key, line, sizeof(line)));
	ASSERT_NE(NULL, strstr(line, want)) TH_LOG("line: %s", line);
	close(self->fd);
	self->fd = -1;
	ASSERT_TRUE(wait_for(agent_dead(self->key), WAIT_MS))
		TH_LOG("line: %s", (proc_keys_line(self->key, line, sizeof(line)), line));
}

/* A duplicated descriptor is the same channel: closing one of two kills nothing. */
TEST_F(chan, dup_keeps_channel)
{
	struct chan_req r;
	size_t len;
	pid_t pid;
	int fd2 = dup(self->fd);

	ASSERT_LE(0, fd2);
	close(self->fd);
	self->fd = fd2;
	ASSERT_TRUE(proc_keys_has(self->key, " chan alive"));
	pid = spawn(self, "ct-dup", "x", "dup");
	ASSERT_EQ(1, chan_collect(self->fd, &r, 1, store, sizeof(store), WAIT_MS));
	len = chan_instantiate(answers, r.serial, "dup");
	ASSERT_EQ((long)len, chan_write(self->fd, answers, len));
	ASSERT_EQ(0, wait_child(pid, WAIT_MS));
}

/* Serves one construction on @fd with "<name>:<callout>": exits 0 if that worked. */
static void serve_one(int fd, const char *name)
{
	struct chan_req r;
	char text[128];
	size_t len;

	if (chan_collect(fd, &r, 1, store, sizeof(store), WAIT_MS) != 1)
		_exit(1);
	snprintf(text, sizeof(text), "%s:%s", name, r.callout);
	len = chan_instantiate(answers, r.serial, text);
	_exit(chan_write(fd, answers, len) == (long)len ? 0 : 2);
}

/* After fork() the child reads and answers through the descriptor it inherited. */
TEST_F(chan, fork_child_serves)
{
	struct chan_req r;
	pid_t child, pid;
	size_t len;

	child = track(self, fork());
	ASSERT_LE(0, child);
	if (child == 0)
		serve_one(self->fd, "child");
	pid = spawn(self, "ct-fork", "cb", "child:cb");
	ASSERT_EQ(0, wait_child(pid, WAIT_MS));
	ASSERT_EQ(0, wait_child(child, WAIT_MS));
	/* The parent's copy still serves. */
	ASSERT_TRUE(proc_keys_has(self->key, " chan alive"));
	pid = spawn(self, "ct-fork-2", "cb", "parent:cb");
	ASSERT_EQ(1, chan_collect(self->fd, &r, 1, store, sizeof(store), WAIT_MS));
	len = chan_instantiate(answers, r.serial, "parent:cb");
	ASSERT_EQ((long)len, chan_write(self->fd, answers, len));
	ASSERT_EQ(0, wait_child(pid, WAIT_MS));
}

/* A holder may answer what another holder read. */
TEST_F(chan, fork_child_answers_what_parent_read)
{
	struct chan_req r;
	pid_t child, pid;

	pid = spawn(self, "ct-fork-answer", "x", "other");
	ASSERT_EQ(1, chan_collect(self->fd, &r, 1, store, sizeof(store), WAIT_MS));
	child = track(self, fork());
	ASSERT_LE(0, child);
	if (child == 0) {
		size_t len = chan_instantiate(answers, r.serial, "other");

		_exit(chan_write(self->fd, answers, len) == (long)len ? 0 : 1);
	}
	ASSERT_EQ(0, wait_child(child, WAIT_MS));
	ASSERT_EQ(0, wait_child(pid, WAIT_MS));
}

/*
 * The parent closing its copy while a child holds one does not end the
 * agent; the child's exit, closing the last, does.
 */
TEST_F(chan, fork_parent_close_keeps_agent)
{
	int go[2];
	pid_t child, pid;
	char c;

	ASSERT_EQ(0, pipe(go));
	child = track(self, fork());
	ASSERT_LE(0, child);
	if (child == 0) {
		close(go[1]);
		if (read(go[0], &c, 1) != 1)
			_exit(3);
		serve_one(self->fd, "child");
	}
	close(go[0]);
	ASSERT_EQ(0, close(self->fd));
	self->fd = -1;
	ASSERT_EQ(1, write(go[1], "g", 1));
	close(go[1]);
	ASSERT_TRUE(proc_keys_has(self->key, " chan alive"));
	pid = spawn(self, "ct-fork-close", "cb", "child:cb");
	ASSERT_EQ(0, wait_child(pid, WAIT_MS));
	ASSERT_EQ(0, wait_child(child, WAIT_MS));
	/* The child has exited: the last reference is gone. */
	ASSERT_TRUE(wait_for(agent_dead(self->key), WAIT_MS));
	pid = spawn(self, "ct-fork-after", "cb", "request-key:cb");
	ASSERT_EQ(0, wait_child(pid, WAIT_MS));
}

/*
 * A channel passed with SCM_RIGHTS to a process that never had it serves
 * there, and outlives the sender's descriptor.
 */
TEST_F(chan, scm_rights_passed_channel_serves)
{
	char cbuf[CMSG_SPACE(sizeof(int))], c = 'x';
	struct iovec iov = { .iov_base = &c, .iov_len = 1 };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
			      .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *cmsg;
	int sv[2], fd;
	pid_t other, pid;

	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
	other = track(self, fork());
	ASSERT_LE(0, other);
	if (other == 0) {
		/* Nothing inherited but the socket. */
		if (dup2(sv[1], 3) != 3)
			_exit(4);
		syscall(__NR_close_range, 4, ~0U, 0);
		if (recvmsg(3, &msg, 0) != 1)
			_exit(5);
		cmsg = CMSG_FIRSTHDR(&msg);
		if (!cmsg || cmsg->cmsg_type != SCM_RIGHTS)
			_exit(6);
		memcpy(&fd, CMSG_DATA(cmsg), sizeof(fd));
		serve_one(fd, "passed");
	}
	close(sv[1]);
	cmsg = CMSG_FIRSTHDR(&msg);
	cmsg->cmsg_level = SOL_SOCKET;
	cmsg->cmsg_type = SCM_RIGHTS;
	cmsg->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cmsg), &self->fd, sizeof(int));
	ASSERT_EQ(1, sendmsg(sv[0], &msg, 0));
	close(sv[0]);
	ASSERT_EQ(0, close(self->fd));
	self->fd = -1;
	ASSERT_TRUE(proc_keys_has(self->key, " chan alive"));
	pid = spawn(self, "ct-scm", "cb", "passed:cb");
	ASSERT_EQ(0, wait_child(pid, WAIT_MS));
	ASSERT_EQ(0, wait_child(other, WAIT_MS));
	ASSERT_TRUE(wait_for(agent_dead(self->key), WAIT_MS));
}

/* One channel serves several types. */
TEST_F(chan, one_channel_two_types)
{
	struct chan_req r[2];
	pid_t pu, pl;
	size_t len;

	ASSERT_LT(0, chan_register(self->fd, "logon", NULL, KEY_SPEC_SESSION_KEYRING));
	pu = spawn(self, "ct-two-u", "u", "user-answer");
	ASSERT_EQ(1, chan_collect(self->fd, &r[0], 1, store, sizeof(store), WAIT_MS));
	/* logon keys cannot be read back: the requester only checks it got one. */
	pl = track(self, requester_start("logon", "ct:two-l", "l", NULL, NULL));
	ASSERT_EQ(1, chan_collect(self->fd, &r[1], 1, store + KEYAGENT_REQUEST_MAX,
				  KEYAGENT_REQUEST_MAX, WAIT_MS));
	ASSERT_STREQ("user", r[0].type);
	ASSERT_STREQ("logon", r[1].type);
	ASSERT_STREQ("ct:two-l", r[1].desc);
	len = chan_instantiate(answers, r[0].serial, "user-answer");
	len += chan_instantiate(answers + len, r[1].serial, "logon-answer");
	ASSERT_EQ((long)len, chan_write(self->fd, answers, len));
	ASSERT_EQ(0, wait_child(pu, WAIT_MS));
	ASSERT_EQ(0, wait_child(pl, WAIT_MS));
}

/* A signal agent and a channel agent, for two types in one session. */
TEST_F(chan, signal_and_channel_agents_together)
{
	const char *args[] = { "-t", "user", NULL };
	struct agent sig = { 0 };
	struct chan_req r;
	pid_t pu, pl;
	size_t len;

	/* The signal agent takes "user" (replacing the fixture's registration)... */
	ASSERT_EQ(0, agent_start(&sig, args));
	ASSERT_LT(0, chan_register(self->fd, "logon", NULL, KEY_SPEC_SESSION_KEYRING));
	pu = spawn(self, "ct-mixed-u", "u", "agent:u");
	pl = track(self, requester_start("logon", "ct:mixed-l", "l", NULL, NULL));
	ASSERT_EQ(1, chan_collect(self->fd, &r, 1, store, sizeof(store), WAIT_MS));
	ASSERT_STREQ("logon", r.type);
	ASSERT_EQ(pl, r.pid);
	len = chan_instantiate(answers, r.serial, "logon-answer");
	ASSERT_EQ((long)len, chan_write(self->fd, answers, len));
	ASSERT_EQ(0, wait_child(pl, WAIT_MS));
	ASSERT_EQ(0, wait_child(pu, WAIT_MS));
	agent_stop(&sig);
	/* ...and the channel never saw the user request. */
	ASSERT_EQ(0, fcntl(self->fd, F_SETFL, O_NONBLOCK));
	ASSERT_EQ(-1, read(self->fd, store, KEYAGENT_REQUEST_MAX));
	ASSERT_EQ(EAGAIN, errno);
}

/* The kernel's own request (override credentials) carries KEYAGENT_REQUEST_KERNEL. */
TEST_F(chan, kernel_request_flagged)
{
	struct chan_req r;
	char buf[128], name[32];
	int fds[2];
	size_t len;
	pid_t q;
	long n;

	/* The type's cache is global: a name of this run's, answered for ten minutes. */
	snprintf(name, sizeof(name), "ct-kernel-%d", getpid());
	if (caller_module_load())
		SKIP(return, "no test caller module (%s)", CALLER_MODULE_PATH);
	ASSERT_EQ(0, param_set("global_types", "keyagent_test"));
	ASSERT_LT(0, chan_register(self->fd, "keyagent_test", " net", KEY_SPEC_SESSION_KEYRING));
	ASSERT_EQ(0, pipe(fds));
	q = track(self, fork());
	ASSERT_LE(0, q);
	if (q == 0) {
		close(fds[0]);
		n = kernel_query("request", name, buf, sizeof(buf));
		if (write(fds[1], &n, sizeof(n)) != sizeof(n) ||
		    (n > 0 && write(fds[1], buf, n) != n))
			_exit(1);
		_exit(0);
	}
	close(fds[1]);
	ASSERT_EQ(1, chan_collect(self->fd, &r, 1, store, sizeof(store), WAIT_MS));
	ASSERT_STREQ("keyagent_test", r.type);
	ASSERT_STREQ(name, r.desc);
	ASSERT_EQ(KEYAGENT_REQUEST_KERNEL, r.flags & KEYAGENT_REQUEST_KERNEL);
	ASSERT_EQ(q, r.pid);
	len = chan_answer(answers, KEYAGENT_OP_INSTANTIATE, r.serial, 0, 600, "idmap:k", 7);
	ASSERT_EQ((long)len, chan_write(self->fd, answers, len));
	ASSERT_EQ(0, wait_child(q, WAIT_MS));
	ASSERT_EQ((long)sizeof(n), read(fds[0], &n, sizeof(n)));
	ASSERT_EQ(7, n);
	ASSERT_EQ(7, read(fds[0], buf, sizeof(buf) - 1));
	buf[7] = 0;
	ASSERT_STREQ("idmap:k", buf);
	close(fds[0]);
}

/*
 * The open file holds the module: rmmod fails while a channel is open (and
 * the channel still serves), and succeeds once it is closed.
 */
TEST_F_TIMEOUT(chan, rmmod_refused_while_open, 300)
{
	struct chan_req r;
	size_t len;
	pid_t pid;

	ASSERT_EQ(-1, syscall(__NR_delete_module, "keyagent", O_NONBLOCK));
	ASSERT_EQ(EWOULDBLOCK, errno);
	ASSERT_TRUE(module_loaded());
	pid = spawn(self, "ct-rmmod", "x", "still");
	ASSERT_EQ(1, chan_collect(self->fd, &r, 1, store, sizeof(store), WAIT_MS));
	len = chan_instantiate(answers, r.serial, "still");
	ASSERT_EQ((long)len, chan_write(self->fd, answers, len));
	ASSERT_EQ(0, wait_child(pid, WAIT_MS));
	ASSERT_EQ(-1, syscall(__NR_delete_module, "keyagent", O_NONBLOCK));
	ASSERT_EQ(EWOULDBLOCK, errno);

	/* An open channel that was never registered holds it too. */
	close(self->fd);
	self->fd = chan_open(0);
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(-1, syscall(__NR_delete_module, "keyagent", O_NONBLOCK));
	ASSERT_EQ(EWOULDBLOCK, errno);
	close(self->fd);
	self->fd = -1;
	/* Constructions answered may hold it until the module's reaper has run. */
	ASSERT_EQ(0, module_unload(WAIT_MS));
	ASSERT_FALSE(module_loaded());
	ASSERT_GT(0, chan_open(0));
	ASSERT_EQ(0, module_load(""));
	ASSERT_LE(0, self->fd = chan_open(0));
}

/* ----------------------------------------------------------------------
 * Registration: the payload "fd N[ net]".
 */
FIXTURE(reg) {
	int fd, null_fd;
};

FIXTURE_VARIANT(reg) {
	const char *format;	/* %d: the channel's descriptor; %n: /dev/null's */
	int use_null;
	int error;
};

FIXTURE_VARIANT_ADD(reg, fd_not_open) { .format = "fd 987", .error = EBADF };
FIXTURE_VARIANT_ADD(reg, fd_not_a_channel) { .format = "fd %d", .use_null = 1, .error = EINVAL };
FIXTURE_VARIANT_ADD(reg, fd_alone) { .format = "fd", .error = EINVAL };
FIXTURE_VARIANT_ADD(reg, fd_space) { .format = "fd ", .error = EINVAL };
FIXTURE_VARIANT_ADD(reg, fd_not_a_number) { .format = "fd x", .error = EINVAL };
FIXTURE_VARIANT_ADD(reg, fd_trailing_word) { .format = "fd %d bogus", .error = EINVAL };
FIXTURE_VARIANT_ADD(reg, fd_trailing_junk) { .format = "fd %dx", .error = EINVAL };
FIXTURE_VARIANT_ADD(reg, fd_net_junk) { .format = "fd %d net x", .error = EINVAL };
FIXTURE_VARIANT_ADD(reg, fd_valid) { .format = "fd %d", .error = 0 };

FIXTURE_SETUP(reg)
{
	self->fd = self->null_fd = -1;
	if (!module_loaded())
		SKIP(return, "keyagent module not loaded");
	ASSERT_LT(0, keyctl_join_session_keyring(NULL));
	self->fd = chan_open(0);
	ASSERT_LE(0, self->fd);
	self->null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, self->null_fd);
	close(987);
}

FIXTURE_TEARDOWN(reg)
{
	if (self->fd >= 0)
		close(self->fd);
	if (self->null_fd >= 0)
		close(self->null_fd);
}

TEST_F(reg, add_key)
{
	char payload[64];
	long ret;

	snprintf(payload, sizeof(payload), variant->format,
		 variant->use_null ? self->null_fd : self->fd);
	ret = add("keyagent", "user", payload, strlen(payload), KEY_SPEC_SESSION_KEYRING);
	if (variant->error) {
		ASSERT_EQ(-variant->error, ret) TH_LOG("payload \"%s\"", payload);
	} else {
		ASSERT_LT(0, ret) TH_LOG("payload \"%s\"", payload);
	}
}

/* ----------------------------------------------------------------------
 * Writes refused: each changes nothing, so every construction it named can
 * still be answered afterwards (and the unread one still be read).
 */
FIXTURE(bad) {
	int fd;
	key_serial_t key;
	struct chan_req r[3];
	int serials[4];		/* read ones, then the unread one */
	pid_t pids[4];
	int n;
};

FIXTURE_VARIANT(bad) {
	/* Builds the write in @buf from the serials: its length. */
	size_t (*build)(char *buf, const int *serials, int unread);
	int nread;		/* constructions read first (1 to 3) */
	int unread;		/* one more queued and not read */
	int error;
};

static struct keyagent_answer *hdr(char *buf)
{
	return (struct keyagent_answer *)buf;
}

static size_t b_short(char *b, const int *s, int u)
{
	chan_instantiate(b, s[0], "x");
	return 16;
}

static size_t b_size_not_aligned(char *b, const int *s, int u)
{
	chan_instantiate(b, s[0], "abcd");
	hdr(b)->size = 28;
	return 28;
}

static size_t b_trailing_bytes(char *b, const int *s, int u)
{
	size_t len = chan_instantiate(b, s[0], "abcd");

	memset(b + len, 0, 8);
	return len + 4;
}

static size_t b_trailing_zero_record(char *b, const int *s, int u)
{
	size_t len = chan_instantiate(b, s[0], "abcd");

	memset(b + len, 0, 24);
	return len + 24;
}

static size_t b_size_beyond_write(char *b, const int *s, int u)
{
	chan_instantiate(b, s[0], "abcdefgh");
	hdr(b)->size = 4096;
	return 32;
}

static size_t b_cut_short(char *b, const int *s, int u)
{
	chan_instantiate(b, s[0], "abcdefgh");
	return 24;
}

static size_t b_size_below_header(char *b, const int *s, int u)
{
	chan_answer(b, KEYAGENT_OP_NEGATE, s[0], 0, 0, NULL, 0);
	hdr(b)->size = 16;
	return 24;
}

static size_t b_size_zero(char *b, const int *s, int u)
{
	chan_answer(b, KEYAGENT_OP_NEGATE, s[0], 0, 0, NULL, 0);
	hdr(b)->size = 0;
	return 24;
}

static size_t b_oversized_record(char *b, const int *s, int u)
{
	chan_instantiate(b, s[0], "abc");
	memset(b + 32, 0, 8);
	hdr(b)->size = 40;
	return 40;
}

static size_t b_version_0(char *b, const int *s, int u)
{
	size_t len = chan_instantiate(b, s[0], "x");

	hdr(b)->version = 0;
	return len;
}

static size_t b_version_2(char *b, const int *s, int u)
{
	size_t len = chan_instantiate(b, s[0], "x");

	hdr(b)->version = KEYAGENT_ABI_VERSION + 1;
	return len;
}

static size_t b_op_0(char *b, const int *s, int u)
{
	return chan_answer(b, 0, s[0], 0, 0, NULL, 0);
}

static size_t b_op_4(char *b, const int *s, int u)
{
	return chan_answer(b, 4, s[0], 0, 0, NULL, 0);
}

static size_t b_reject_error_0(char *b, const int *s, int u)
{
	return chan_answer(b, KEYAGENT_OP_REJECT, s[0], 0, 0, NULL, 0);
}

static size_t b_reject_error_4096(char *b, const int *s, int u)
{
	return chan_answer(b, KEYAGENT_OP_REJECT, s[0], 4096, 0, NULL, 0);
}

static size_t b_reject_error_negative(char *b, const int *s, int u)
{
	return chan_answer(b, KEYAGENT_OP_REJECT, s[0], (unsigned int)-EKEYREJECTED, 0, NULL, 0);
}

static size_t b_reject_with_payload(char *b, const int *s, int u)
{
	return chan_answer(b, KEYAGENT_OP_REJECT, s[0], EKEYREJECTED, 0, "payload", 7);
}

static size_t b_negate_with_payload(char *b, const int *s, int u)
{
	return chan_answer(b, KEYAGENT_OP_NEGATE, s[0], 0, 0, "payload!", 8);
}

static size_t b_negate_with_error(char *b, const int *s, int u)
{
	return chan_answer(b, KEYAGENT_OP_NEGATE, s[0], ENOKEY, 0, NULL, 0);
}

static size_t b_instantiate_with_error(char *b, const int *s, int u)
{
	return chan_answer(b, KEYAGENT_OP_INSTANTIATE, s[0], EKEYREJECTED, 0, "x", 1);
}

static size_t b_payload_too_long(char *b, const int *s, int u)
{
	return chan_answer(b, KEYAGENT_OP_INSTANTIATE, s[0], 0, 0, big, KEYAGENT_PAYLOAD_MAX + 1);
}

static size_t b_payload_len_beyond_size(char *b, const int *s, int u)
{
	size_t len = chan_instantiate(b, s[0], "abcdefgh");

	hdr(b)->payload_len = 16;
	return len;
}

static size_t b_pad_nonzero_first(char *b, const int *s, int u)
{
	size_t len = chan_instantiate(b, s[0], "abc");

	b[24 + 3] = 1;
	return len;
}

static size_t b_pad_nonzero_last(char *b, const int *s, int u)
{
	size_t len = chan_instantiate(b, s[0], "abc");

	b[len - 1] = (char)0xff;
	return len;
}

static size_t b_serial_twice(char *b, const int *s, int u)
{
	size_t len = chan_instantiate(b, s[0], "one");

	return len + chan_instantiate(b + len, s[0], "two");
}

static size_t b_serial_twice_other_op(char *b, const int *s, int u)
{
	size_t len = chan_instantiate(b, s[0], "one");

	return len + chan_answer(b + len, KEYAGENT_OP_REJECT, s[0], EKEYREJECTED, 0, NULL, 0);
}

static size_t b_serial_unknown(char *b, const int *s, int u)
{
	return chan_instantiate(b, 0x7ffffff0, "x");
}

static size_t b_serial_zero(char *b, const int *s, int u)
{
	return chan_instantiate(b, 0, "x");
}

static size_t b_serial_other_key(char *b, const int *s, int u)
{
	return chan_instantiate(b, keyctl_get_keyring_ID(KEY_SPEC_SESSION_KEYRING, 0), "x");
}

static size_t b_serial_unread(char *b, const int *s, int u)
{
	return chan_instantiate(b, s[u], "x");
}

static size_t b_valid_then_unread(char *b, const int *s, int u)
{
	size_t len = chan_instantiate(b, s[0], "x");

	return len + chan_instantiate(b + len, s[u], "x");
}

static size_t b_valid_then_invalid(char *b, const int *s, int u)
{
	size_t len = chan_instantiate(b, s[0], "x"), second;

	second = chan_instantiate(b + len, s[1], "x");
	hdr(b + len)->version = KEYAGENT_ABI_VERSION + 1;
	return len + second;
}

static size_t b_valid_then_fragment(char *b, const int *s, int u)
{
	size_t len = chan_instantiate(b, s[0], "x");

	len += chan_instantiate(b + len, s[1], "x");
	return len - 8;
}

/* Three records the ABI takes, 80 bytes too many for one write. */
static size_t b_write_too_long(char *b, const int *s, int u)
{
	size_t len = chan_instantiate(b, s[0], "x");

	len += chan_answer(b + len, KEYAGENT_OP_INSTANTIATE, s[1], 0, 0, big, KEYAGENT_PAYLOAD_MAX);
	len += chan_answer(b + len, KEYAGENT_OP_INSTANTIATE, s[2], 0, 0, big, KEYAGENT_PAYLOAD_MAX);
	return len;
}

#define BAD(name, n, unread_, err) \
	FIXTURE_VARIANT_ADD(bad, name) { .build = b_##name, .nread = n, .unread = unread_, .error = err }

BAD(short, 1, 0, EINVAL);
BAD(size_not_aligned, 1, 0, EINVAL);
BAD(trailing_bytes, 1, 0, EINVAL);
BAD(trailing_zero_record, 1, 0, EINVAL);
BAD(size_beyond_write, 1, 0, EINVAL);
BAD(cut_short, 1, 0, EINVAL);
BAD(size_below_header, 1, 0, EINVAL);
BAD(size_zero, 1, 0, EINVAL);
BAD(oversized_record, 1, 0, EINVAL);
BAD(version_0, 1, 0, EINVAL);
BAD(version_2, 1, 0, EINVAL);
BAD(op_0, 1, 0, EINVAL);
BAD(op_4, 1, 0, EINVAL);
BAD(reject_error_0, 1, 0, EINVAL);
BAD(reject_error_4096, 1, 0, EINVAL);
BAD(reject_error_negative, 1, 0, EINVAL);
BAD(reject_with_payload, 1, 0, EINVAL);
BAD(negate_with_payload, 1, 0, EINVAL);
BAD(negate_with_error, 1, 0, EINVAL);
BAD(instantiate_with_error, 1, 0, EINVAL);
BAD(payload_too_long, 1, 0, EINVAL);
BAD(payload_len_beyond_size, 1, 0, EINVAL);
BAD(pad_nonzero_first, 1, 0, EINVAL);
BAD(pad_nonzero_last, 1, 0, EINVAL);
BAD(serial_twice, 1, 0, EINVAL);
BAD(serial_twice_other_op, 1, 0, EINVAL);
BAD(serial_unknown, 1, 0, ENOENT);
BAD(serial_zero, 1, 0, ENOENT);
BAD(serial_other_key, 1, 0, ENOENT);
BAD(serial_unread, 1, 1, ENOENT);
BAD(valid_then_unread, 1, 1, ENOENT);
BAD(valid_then_invalid, 2, 0, EINVAL);
BAD(valid_then_fragment, 2, 0, EINVAL);
BAD(write_too_long, 3, 0, EINVAL);

FIXTURE_SETUP(bad)
{
	char desc[32], expect[32];
	int i;

	self->fd = -1;
	self->n = 0;
	if (!module_loaded())
		SKIP(return, "keyagent module not loaded");
	ASSERT_LT(0, keyctl_join_session_keyring(NULL));
	ASSERT_EQ(0, param_set("request_timeout", FAR_TIMEOUT));
	self->fd = chan_open(0);
	ASSERT_LE(0, self->fd);
	self->key = chan_register(self->fd, "user", NULL, KEY_SPEC_SESSION_KEYRING);
	ASSERT_LT(0, self->key);
	memset(big, 'p', sizeof(big));
	for (i = 0; i < variant->nread + variant->unread; i++) {
		snprintf(desc, sizeof(desc), "ct-bad-%d-%d", getpid(), i);
		snprintf(expect, sizeof(expect), "good:%d", i);
		self->pids[i] = requester_start("user", desc, "x", expect, NULL);
		ASSERT_LT(0, self->pids[i]);
		self->n++;
		if (i < variant->nread) {
			ASSERT_EQ(1, chan_collect(self->fd, &self->r[i], 1,
						  store + i * KEYAGENT_REQUEST_MAX,
						  KEYAGENT_REQUEST_MAX, WAIT_MS));
			self->serials[i] = self->r[i].serial;
		} else {
			/* Queued: handed over, and so its key exists. */
			ASSERT_TRUE(sent(self->key, i + 1));
			self->serials[i] = proc_keys_find("user", desc);
			ASSERT_LT(0, self->serials[i]);
		}
	}
}

FIXTURE_TEARDOWN(bad)
{
	int i;

	if (self->fd >= 0)
		close(self->fd);
	for (i = 0; i < self->n; i++)
		if (waitpid(self->pids[i], NULL, WNOHANG) == 0) {
			kill(self->pids[i], SIGKILL);
			waitpid(self->pids[i], NULL, 0);
		}
	param_set("request_timeout", "30");
}

TEST_F(bad, refused_and_nothing_changed)
{
	int total = variant->nread + variant->unread, i;
	struct chan_req r;
	char text[32];
	size_t len;

	len = variant->build(answers, self->serials, variant->nread);
	ASSERT_EQ(-variant->error, chan_write(self->fd, answers, len));

	/* Nothing answered: every requester still waits. */
	for (i = 0; i < total; i++)
		ASSERT_EQ(0, waitpid(self->pids[i], NULL, WNOHANG)) TH_LOG("requester %d", i);
	/* The unread record is still there. */
	if (variant->unread) {
		ASSERT_EQ(1, chan_collect(self->fd, &r, 1, store + 3 * KEYAGENT_REQUEST_MAX,
					  KEYAGENT_REQUEST_MAX, WAIT_MS));
		ASSERT_EQ(self->serials[variant->nread], r.serial);
	}
	/* Every construction can be answered, in one write. */
	for (i = 0, len = 0; i < total; i++) {
		snprintf(text, sizeof(text), "good:%d", i);
		len += chan_instantiate(answers + len, self->serials[i], text);
	}
	ASSERT_EQ((long)len, chan_write(self->fd, answers, len));
	for (i = 0; i < total; i++)
		ASSERT_EQ(0, wait_child(self->pids[i], WAIT_MS)) TH_LOG("requester %d", i);
}

TEST_HARNESS_MAIN
