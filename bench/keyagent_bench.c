// SPDX-License-Identifier: GPL-2.0
/*
 * keyagent-bench: request_key() constructions through keyagent against
 * /sbin/request-key, measured side by side in one boot.
 *
 *   keyagent-bench latency    [-n SAMPLES] [-N RK_SAMPLES] [-g GAP_MS] [-p PATHS]
 *                             [-P A,R] [-L SUFFIX]
 *   keyagent-bench throughput [-l LEVELS] [-t MS] [-T RK_MS] [-r REPS] [-p PATHS]
 *                             [-P A,R] [-L SUFFIX]
 *   keyagent-bench overhead   [-r ROUNDS] [-b BATCH] [-k BATCHES] [-m MODULE]
 *   keyagent-bench memory     [-n CONSTRUCTIONS] [-c REQUESTERS] [-w WARMUP]
 *   keyagent-bench quota      [-n CONSTRUCTIONS] [-u UID]
 *   keyagent-bench profile    [-n REQUESTS] [-g FUNC,... [-d DEPTH] [-p PATHS] [-P A,R]]
 *
 * Paths (-p, comma-separated):
 *   keyagentd    requests answered by keyagentd with its built-in handler,
 *                through the channel (its default delivery)
 *   keyagentd-sig  the same with keyagentd --delivery signal
 *   agent        requests answered by keyagent-bench-agent (assume_authority +
 *                instantiate, nothing else)
 *   channel      requests answered by keyagent-bench-chan-agent through
 *                /dev/keyagent (a blocking read of the records waiting, one
 *                write of their answers, nothing else)
 *   request-key  requests answered by /sbin/request-key, which runs
 *                /bin/keyctl instantiate %k %c %S (the module is loaded, no
 *                agent is registered in the requester's session)
 *   floor        no construction: a realtime signal to a signalfd reader in
 *                another process, which does keyctl_read + keyctl_update of
 *                existing keys (standing in for assume_authority +
 *                instantiate) and signals back; the requester then reads an
 *                existing key (standing in for the read-back)
 *   chan-floor   the channel's floor, analogous: no construction, a
 *                request-sized record written to a pipe, read by another
 *                process blocked in read(), which updates an existing key
 *                (keyctl_update, standing in for the instantiation the
 *                channel's write does) and writes an answer-sized record back
 *                on a second pipe; the requester then reads an existing key
 *
 * -P A,R pins the process answering (agent, floor reader) to CPU A and the
 * requesters to CPU R (for diagnosis; by default nothing is pinned); -L adds a
 * suffix to the path names in the output, e.g. "agent@same-cpu".
 *
 * Each path has its own requester process in its own session keyring (the
 * agent it talks to registered there), so that the paths can be interleaved
 * request by request and share whatever drift the machine has. A latency
 * sample is request_key() of a fresh description until the key has been read
 * back. Results are printed as lines starting with "BENCH-", for
 * bench/report.py; a short summary is printed for people.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <keyutils.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "keyagent.h"

#define CALLOUT "bench"
#define KEYAGENTD "/bin/keyagentd"
#define BENCH_AGENT "/bench/keyagent-bench-agent"
#define BENCH_CHAN_AGENT "/bench/keyagent-bench-chan-agent"
#define MODULE_KO "/lib/keyagent/keyagent.ko"
#define STATS_DIR "/sys/kernel/debug/keyagent/"
#define SIG_FLOOR_REQ 50
#define SIG_FLOOR_ACK 51

enum path_id { P_KAD, P_KADS, P_MIN, P_CHAN, P_RK, P_FLOOR, P_CFLOOR, NPATHS };

static const char *const kad_argv[] = { KEYAGENTD, "--type", "user", "-q", NULL };
static const char *const kads_argv[] = { KEYAGENTD, "--type", "user", "-q", "--delivery", "signal",
					 NULL };
static const char *const min_argv[] = { BENCH_AGENT, "40", NULL };
static const char *const chan_argv[] = { BENCH_CHAN_AGENT, NULL };

static const struct path_def {
	const char *name;		/* in the output */
	const char *prefix;		/* of the descriptions it requests */
	const char *expect;		/* payload read back */
	const char *const *agent;	/* the agent it starts, if any */
} paths[NPATHS] = {
	[P_KAD] = { "keyagentd", "bench-kad", CALLOUT, kad_argv },
	[P_KADS] = { "keyagentd-sig", "bench-kads", CALLOUT, kads_argv },
	[P_MIN] = { "agent", "bench-min", "ok", min_argv },
	[P_CHAN] = { "channel", "bench-chan", "ok", chan_argv },
	[P_RK] = { "request-key", "bench-rk", CALLOUT, NULL },
	[P_FLOOR] = { "floor", NULL, NULL, NULL },
	[P_CFLOOR] = { "chan-floor", NULL, NULL, NULL },
};

/* ---- small helpers ---- */

/* -P A,R: pin the answering process to CPU A and the requesters to CPU R. */
static int pin_answerer = -1, pin_requester = -1;
/* -L SUFFIX: appended to the path names in the output, to tell variants apart. */
static const char *suffix = "";

static void pin(pid_t pid, int cpu)
{
	cpu_set_t set;

	if (cpu < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(pid, sizeof(set), &set) < 0)
		fprintf(stderr, "keyagent-bench: pinning %d to CPU %d: %m\n", pid, cpu);
}

static void parse_pin(const char *arg)
{
	if (sscanf(arg, "%d,%d", &pin_answerer, &pin_requester) != 2)
		fprintf(stderr, "keyagent-bench: -P wants ANSWERER_CPU,REQUESTER_CPU\n"), exit(2);
	printf("BENCH-META pinned answerer=%d requesters=%d\n", pin_answerer, pin_requester);
}

static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "keyagent-bench: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(1);
}

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static int cmp_ll(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;

	return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted @v. */
static long long pct(const long long *v, long n, double p)
{
	long i = (long)(p / 100.0 * n + 0.999999) - 1;

	if (n == 0)
		return 0;
	return v[i < 0 ? 0 : i >= n ? n - 1 : i];
}

static double median_d(double *v, long n)
{
	long i, j;

	for (i = 1; i < n; i++)
		for (j = i; j > 0 && v[j - 1] > v[j]; j--) {
			double t = v[j];

			v[j] = v[j - 1];
			v[j - 1] = t;
		}
	if (n == 0)
		return 0;
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static ssize_t read_full(int fd, void *buf, size_t len)
{
	size_t done = 0;
	ssize_t n;

	while (done < len) {
		n = read(fd, (char *)buf + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return done ? (ssize_t)done : n;
		done += n;
	}
	return done;
}

static long request(const char *desc, const char *callout, key_serial_t dest)
{
	long ret = syscall(__NR_request_key, "user", desc, callout, dest);

	return ret < 0 ? -errno : ret;
}

/* Runs a program, waits for it; returns its exit status or -1. */
static int run(const char *const argv[])
{
	pid_t pid = fork();
	int status;

	if (pid == 0) {
		execvp(argv[0], (char **)argv);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &status, 0) < 0)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int module_loaded(void)
{
	return access("/sys/module/keyagent", F_OK) == 0;
}

static void print_stats(const char *stage)
{
	static const char *const names[] = {
		"routed", "answered", "fallback", "timeouts", "dead_agents",
		"orphaned", "signal_failures", "busy", "cancelled",
	};
	char path[128], buf[32];
	unsigned i;

	if (!module_loaded())
		return;
	printf("BENCH-STAT %s", stage);
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		FILE *f;

		snprintf(path, sizeof(path), STATS_DIR "%s", names[i]);
		f = fopen(path, "r");
		if (!f || !fgets(buf, sizeof(buf), f))
			strcpy(buf, "-1\n");
		if (f)
			fclose(f);
		buf[strcspn(buf, "\n")] = 0;
		printf(" %s=%s", names[i], buf);
	}
	printf("\n");
	fflush(stdout);
}

/* ---- one construction, as every path's requester does it ---- */

struct outcome {
	long key;		/* serial, or -errno */
	long long ns;		/* request_key() until the key was read back */
};

static struct outcome construct(enum path_id id, const char *desc, key_serial_t dest)
{
	struct outcome o;
	long long t0 = now_ns();
	char buf[64];
	long n;

	o.key = request(desc, CALLOUT, dest);
	if (o.key < 0)
		return o;
	n = keyctl_read(o.key, buf, sizeof(buf) - 1);
	o.ns = now_ns() - t0;
	if (n < 0) {
		keyctl_invalidate(o.key);
		o.key = -errno;
		return o;
	}
	buf[n < (long)sizeof(buf) - 1 ? n : (long)sizeof(buf) - 1] = 0;
	if (strcmp(buf, paths[id].expect) != 0) {
		/* e.g. the request went to the wrong handler */
		fprintf(stderr, "keyagent-bench: %s: key %s has payload '%s', not '%s'\n",
			paths[id].name, desc, buf, paths[id].expect);
		keyctl_invalidate(o.key);
		o.key = -EBADMSG;
	}
	return o;
}

/*
 * Drops a constructed key: unlinked from the keyrings it was linked into
 * (which gives back the 4 bytes of quota each link costs; the garbage
 * collector, removing the links of an invalidated key, does not), then
 * invalidated.
 */
static void discard(key_serial_t key, key_serial_t dest)
{
	keyctl_unlink(key, dest);
	keyctl_unlink(key, KEY_SPEC_SESSION_KEYRING);	/* request-key's %S */
	keyctl_invalidate(key);
}

/* ---- workers: one requester process per path, in its own session ---- */

enum op { OP_LATENCY, OP_THROUGHPUT, OP_CONSTRUCT, OP_CLEAR, OP_QUIT };

struct cmd {
	int op;
	long a, b;
};

struct res {
	long status;		/* 0, or -errno of the first failure */
	long count, errors;
	long long ns, t_last;
};

struct worker {
	enum path_id id;
	pid_t pid;
	int cmd_fd, res_fd;
	/* worker side */
	key_serial_t dest;
	pid_t agent, reader;
	int ack_fd;
	key_serial_t floor_a, floor_b;
	int cf_req, cf_ack;	/* the channel floor's pipes, requester's ends */
	long seq;
	/* keyrings holding the keys of OP_CONSTRUCT, RING_KEYS each */
	key_serial_t rings[64];
	int nrings;
};

/*
 * Keys per keyring in the memory check. A keyring's datalen (4 bytes of quota
 * per link) is 16 bits: past 16383 links it wraps, and clearing the keyring
 * gives back less quota than it charged. Keep well below.
 */
#define RING_KEYS 10000

/* Starts @argv with stdout on a pipe and waits for its "user SERIAL" line. */
static pid_t start_agent(const char *const argv[], const char *errlog)
{
	char line[64] = "";
	struct pollfd pfd;
	int fds[2];
	ssize_t n;
	pid_t pid;

	if (pipe(fds) < 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		int err = open(errlog, O_WRONLY | O_CREAT | O_APPEND, 0644);

		dup2(fds[1], 1);
		if (err >= 0)
			dup2(err, 2);
		close(fds[0]);
		close(fds[1]);
		execv(argv[0], (char **)argv);
		_exit(127);
	}
	close(fds[1]);
	pfd.fd = fds[0];
	pfd.events = POLLIN;
	n = 0;
	if (pid > 0 && poll(&pfd, 1, 20000) == 1)
		n = read(fds[0], line, sizeof(line) - 1);
	close(fds[0]);
	if (pid < 0 || n <= 0 || strncmp(line, "user ", 5) != 0 || atoi(line + 5) <= 0) {
		if (pid > 0) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
		}
		return -1;
	}
	return pid;
}

/* The floor's reader: signal in, two keyctl calls, signal back. */
static void floor_reader(key_serial_t a, key_serial_t b)
{
	struct signalfd_siginfo si;
	sigset_t set;
	char buf[64];
	int sfd;

	sigemptyset(&set);
	sigaddset(&set, SIG_FLOOR_REQ);
	sfd = signalfd(-1, &set, 0);
	if (sfd < 0)
		_exit(1);
	while (read(sfd, &si, sizeof(si)) == sizeof(si)) {
		union sigval v = { .sival_int = si.ssi_int };

		keyctl_read(a, buf, sizeof(buf));
		keyctl_update(b, "ok", 2);
		sigqueue(si.ssi_pid, SIG_FLOOR_ACK, v);
	}
	_exit(0);
}

static int floor_setup(struct worker *w)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIG_FLOOR_REQ);
	sigaddset(&set, SIG_FLOOR_ACK);
	sigprocmask(SIG_BLOCK, &set, NULL);
	sigdelset(&set, SIG_FLOOR_REQ);
	w->ack_fd = signalfd(-1, &set, 0);
	w->floor_a = add_key("user", "bench-floor:a", CALLOUT, strlen(CALLOUT), w->dest);
	w->floor_b = add_key("user", "bench-floor:b", "ok", 2, w->dest);
	if (w->ack_fd < 0 || w->floor_a < 0 || w->floor_b < 0)
		return -1;
	w->reader = fork();
	if (w->reader == 0)
		floor_reader(w->floor_a, w->floor_b);
	return w->reader > 0 ? 0 : -1;
}

static struct outcome floor_once(struct worker *w)
{
	union sigval v = { .sival_int = (int)w->seq };
	struct signalfd_siginfo si;
	struct outcome o = { .key = 0 };
	long long t0 = now_ns();
	char buf[64];

	if (sigqueue(w->reader, SIG_FLOOR_REQ, v) < 0 ||
	    read(w->ack_fd, &si, sizeof(si)) != sizeof(si) ||
	    keyctl_read(w->floor_a, buf, sizeof(buf)) < 0) {
		o.key = -errno;
		return o;
	}
	o.ns = now_ns() - t0;
	o.key = w->floor_a;
	return o;
}

/* The channel floor's records: the size of a benchmark request's, and of an answer's. */
#define CF_REQ 64
#define CF_ANS 32

/* The channel floor's reader: a record in, one keyctl call, a record back. */
static void chan_floor_reader(key_serial_t b, int in, int out)
{
	char rec[CF_REQ], ans[CF_ANS];

	memset(ans, 0, sizeof(ans));
	while (read(in, rec, sizeof(rec)) == sizeof(rec)) {
		keyctl_update(b, "ok", 2);
		memcpy(ans, rec, 8);
		if (write(out, ans, sizeof(ans)) != sizeof(ans))
			break;
	}
	_exit(0);
}

static int chan_floor_setup(struct worker *w)
{
	int req[2], ack[2];

	if (pipe(req) < 0 || pipe(ack) < 0)
		return -1;
	w->floor_a = add_key("user", "bench-cfloor:a", CALLOUT, strlen(CALLOUT), w->dest);
	w->floor_b = add_key("user", "bench-cfloor:b", "ok", 2, w->dest);
	if (w->floor_a < 0 || w->floor_b < 0)
		return -1;
	w->reader = fork();
	if (w->reader == 0) {
		close(req[1]);
		close(ack[0]);
		chan_floor_reader(w->floor_b, req[0], ack[1]);
	}
	close(req[0]);
	close(ack[1]);
	w->cf_req = req[1];
	w->cf_ack = ack[0];
	return w->reader > 0 ? 0 : -1;
}

static struct outcome chan_floor_once(struct worker *w)
{
	struct outcome o = { .key = 0 };
	char rec[CF_REQ] = "", ans[CF_ANS];
	long long t0 = now_ns();
	char buf[64];

	memcpy(rec, &w->seq, sizeof(w->seq));
	if (write(w->cf_req, rec, sizeof(rec)) != sizeof(rec) ||
	    read_full(w->cf_ack, ans, sizeof(ans)) != sizeof(ans) ||
	    keyctl_read(w->floor_a, buf, sizeof(buf)) < 0) {
		o.key = -(errno ?: EPIPE);
		return o;
	}
	o.ns = now_ns() - t0;
	o.key = w->floor_a;
	return o;
}

/*
 * Runs @conc requester processes. With @ms > 0 each requests fresh keys until
 * @ms have passed, then invalidates them; with @count > 0 they share @count
 * constructions and leave the keys linked in the worker's keyring.
 */
static void requesters(struct worker *w, int conc, long ms, long count, struct res *r)
{
	int start[2], results[2], cleanup[2], i;
	long long t_start;
	pid_t pids[64];

	memset(r, 0, sizeof(*r));
	if (conc < 1 || conc > 64 || pipe(start) < 0 || pipe(results) < 0 || pipe(cleanup) < 0) {
		r->status = -EINVAL;
		return;
	}
	for (i = 0; i < conc; i++) {
		pids[i] = fork();
		if (pids[i] == 0) {
			long n = count ? count / conc + (i < count % conc) : 0;
			long cap = 1024, done = 0;
			long *keys = malloc(cap * sizeof(*keys));
			struct res mine = { 0 };
			long long deadline;
			char desc[96], c;

			close(start[1]);
			close(results[0]);
			close(cleanup[1]);
			if (read(start[0], &c, 1) < 0)
				_exit(1);
			deadline = now_ns() + ms * 1000000LL;
			while (count ? done < n : now_ns() < deadline) {
				struct outcome o;

				snprintf(desc, sizeof(desc), "%s:%s%d:%d:%ld:%d",
					 paths[w->id].prefix, count ? "m" : "t", conc, i,
					 done, getpid());
				o = construct(w->id, desc,
					      count ? w->rings[(done * conc + i) / RING_KEYS] : w->dest);
				done++;
				if (o.key < 0) {
					if (!mine.status)
						mine.status = o.key;
					mine.errors++;
					continue;
				}
				mine.count++;
				mine.t_last = now_ns();
				if (!count) {
					if (mine.count > cap) {
						cap *= 2;
						keys = realloc(keys, cap * sizeof(*keys));
					}
					if (keys)
						keys[mine.count - 1] = o.key;
				}
			}
			if (write(results[1], &mine, sizeof(mine)) != sizeof(mine))
				_exit(1);
			/* Keys go only once every requester has finished. */
			if (read(cleanup[0], &c, 1) < 0)
				_exit(1);
			for (done = 0; !count && keys && done < mine.count; done++)
				discard(keys[done], w->dest);
			_exit(0);
		}
	}
	close(start[0]);
	close(results[1]);
	close(cleanup[0]);
	t_start = now_ns();
	close(start[1]);
	for (i = 0; i < conc; i++) {
		struct res one;

		if (read_full(results[0], &one, sizeof(one)) != sizeof(one)) {
			r->status = r->status ?: -EPIPE;
			continue;
		}
		r->count += one.count;
		r->errors += one.errors;
		if (!r->status)
			r->status = one.status;
		if (one.t_last > r->t_last)
			r->t_last = one.t_last;
	}
	r->ns = (r->t_last ?: now_ns()) - t_start;
	close(results[0]);
	close(cleanup[1]);
	for (i = 0; i < conc; i++)
		waitpid(pids[i], NULL, 0);
}

static void worker_main(struct worker *w)
{
	struct res r = { 0 };
	struct cmd c;

	if (keyctl_join_session_keyring(NULL) < 0)
		r.status = -errno;
	w->dest = add_key("keyring", "bench-dest", NULL, 0, KEY_SPEC_SESSION_KEYRING);
	if (!r.status && w->dest < 0)
		r.status = -errno;
	if (!r.status && paths[w->id].agent) {
		char errlog[64];

		snprintf(errlog, sizeof(errlog), "/tmp/%s.err", paths[w->id].name);
		w->agent = start_agent(paths[w->id].agent, errlog);
		if (w->agent < 0)
			r.status = -ENODEV;
	}
	if (!r.status && w->id == P_FLOOR && floor_setup(w) < 0)
		r.status = -errno ?: -EINVAL;
	if (!r.status && w->id == P_CFLOOR && chan_floor_setup(w) < 0)
		r.status = -errno ?: -EINVAL;
	/* The process that answers: for tracing. */
	r.count = w->id == P_FLOOR || w->id == P_CFLOOR ? w->reader : w->agent;
	if (r.count > 0)
		pin(r.count, pin_answerer);
	pin(0, pin_requester);
	if (write(w->res_fd, &r, sizeof(r)) != sizeof(r) || r.status)
		_exit(1);

	while (read_full(w->cmd_fd, &c, sizeof(c)) == sizeof(c)) {
		struct outcome o;
		char desc[96];

		memset(&r, 0, sizeof(r));
		switch (c.op) {
		case OP_LATENCY:
			w->seq = c.a;
			if (w->id == P_FLOOR) {
				o = floor_once(w);
			} else if (w->id == P_CFLOOR) {
				o = chan_floor_once(w);
			} else {
				snprintf(desc, sizeof(desc), "%s:l%ld:%d", paths[w->id].prefix,
					 c.a, getpid());
				o = construct(w->id, desc, w->dest);
				if (o.key > 0)
					discard(o.key, w->dest);
			}
			r.status = o.key < 0 ? o.key : 0;
			r.ns = o.ns;
			break;
		case OP_THROUGHPUT:
			requesters(w, (int)c.a, c.b, 0, &r);
			break;
		case OP_CONSTRUCT:
			while (w->nrings < 64 && (long)w->nrings * RING_KEYS < c.b + c.a) {
				char name[32];

				snprintf(name, sizeof(name), "bench-ring-%d", w->nrings);
				w->rings[w->nrings] = add_key("keyring", name, NULL, 0, w->dest);
				if (w->rings[w->nrings] < 0)
					break;
				w->nrings++;
			}
			if ((long)w->nrings * RING_KEYS < c.b + c.a)
				r.status = -ENOSPC;
			else
				requesters(w, (int)c.a, 0, c.b, &r);
			break;
		case OP_CLEAR:
			/* The keys go with their keyrings, which go with their link. */
			r.status = keyctl_clear(w->dest) < 0 ? -errno : 0;
			w->nrings = 0;
			break;
		case OP_QUIT:
			if (w->agent > 0) {
				/* keyagentd stops cleanly on SIGTERM */
				kill(w->agent, SIGTERM);
				waitpid(w->agent, NULL, 0);
			}
			if (w->reader > 0) {
				kill(w->reader, SIGKILL);
				waitpid(w->reader, NULL, 0);
			}
			if (write(w->res_fd, &r, sizeof(r)) != sizeof(r))
				_exit(1);
			_exit(0);
		}
		if (write(w->res_fd, &r, sizeof(r)) != sizeof(r))
			_exit(1);
	}
	_exit(0);
}

/* Starts the worker of path @id; returns 0, or -1 (printed) if it could not start. */
static int worker_start(struct worker *w, enum path_id id)
{
	int cmd[2], res[2];
	struct res r;

	memset(w, 0, sizeof(*w));
	w->id = id;
	if (paths[id].agent && access(paths[id].agent[0], X_OK) < 0) {
		printf("BENCH-META pending %s (%s not in the guest)\n", paths[id].name,
		       paths[id].agent[0]);
		printf("%s: %s is missing, path skipped\n", paths[id].name, paths[id].agent[0]);
		return -1;
	}
	if (pipe(cmd) < 0 || pipe(res) < 0)
		die("pipe: %m");
	fflush(stdout);
	w->pid = fork();
	if (w->pid < 0)
		die("fork: %m");
	if (w->pid == 0) {
		close(cmd[1]);
		close(res[0]);
		w->cmd_fd = cmd[0];
		w->res_fd = res[1];
		worker_main(w);
	}
	close(cmd[0]);
	close(res[1]);
	w->cmd_fd = cmd[1];
	w->res_fd = res[0];
	if (read_full(w->res_fd, &r, sizeof(r)) != sizeof(r) || r.status) {
		printf("BENCH-META failed %s (could not start: %s)\n", paths[id].name,
		       strerror(-(int)r.status));
		waitpid(w->pid, NULL, 0);
		w->pid = 0;
		return -1;
	}
	w->agent = r.count;
	return 0;
}

static struct res worker_call(struct worker *w, int op, long a, long b)
{
	struct cmd c = { op, a, b };
	struct res r = { .status = -EPIPE };

	if (write(w->cmd_fd, &c, sizeof(c)) != sizeof(c) ||
	    read_full(w->res_fd, &r, sizeof(r)) != sizeof(r))
		r.status = -EPIPE;
	return r;
}

static void worker_stop(struct worker *w)
{
	if (w->pid <= 0)
		return;
	worker_call(w, OP_QUIT, 0, 0);
	close(w->cmd_fd);
	close(w->res_fd);
	waitpid(w->pid, NULL, 0);
	w->pid = 0;
}

/* Parses -p: a mask of paths. */
static unsigned parse_paths(const char *list)
{
	char *copy = strdup(list), *tok, *save = NULL;
	unsigned mask = 0;
	int i;

	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		for (i = 0; i < NPATHS; i++)
			if (strcmp(tok, paths[i].name) == 0)
				break;
		if (i == NPATHS)
			die("unknown path '%s'", tok);
		mask |= 1u << i;
	}
	free(copy);
	return mask;
}

/* ---- key and slab accounting ---- */

/* Keys of @want_uid in /proc/key-users, -1 if none; its quota bytes in *@qnbytes. */
static long user_keys(unsigned want_uid, long *qnbytes)
{
	FILE *f = fopen("/proc/key-users", "r");
	char line[256];
	long nkeys = -1;

	while (f && fgets(line, sizeof(line), f)) {
		long usage, n, ni, qk, mk, qb;
		unsigned uid;

		if (sscanf(line, " %u: %ld %ld/%ld %ld/%ld %ld/", &uid, &usage, &n, &ni, &qk, &mk,
			   &qb) == 7 && uid == want_uid) {
			nkeys = n;
			if (qnbytes)
				*qnbytes = qb;
		}
	}
	if (f)
		fclose(f);
	return nkeys;
}

/* Keys of uid 0 in /proc/key-users, -1 if not found. */
static long root_keys(void)
{
	return user_keys(0, NULL);
}

/*
 * Waits until uid 0 has at most @target keys (up to @ms), then @quiet_ms more
 * for deferred frees (RCU) to finish.
 */
static long gc_settle(long target, long ms, long quiet_ms)
{
	long long deadline = now_ns() + ms * 1000000LL;

	while (root_keys() > target && now_ns() < deadline)
		sleep_ms(50);
	sleep_ms(quiet_ms);
	return root_keys();
}

/* Waits until uid 0's keys and quota bytes have not changed for 2 s (at most 30 s). */
static void quiesce(void)
{
	long long deadline = now_ns() + 30000000000LL, since = now_ns();
	long keys = -2, bytes = -2, k, b = 0;

	while (now_ns() < deadline && now_ns() - since < 2000000000LL) {
		k = user_keys(0, &b);
		if (k != keys || b != bytes) {
			keys = k;
			bytes = b;
			since = now_ns();
		}
		sleep_ms(200);
	}
}

/* Empties the slabs' free lists, so that the counts are of live objects. */
static void shrink_slabs(void)
{
	DIR *d = opendir("/sys/kernel/slab");
	struct dirent *e;
	char path[300];

	while (d && (e = readdir(d))) {
		int fd;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/sys/kernel/slab/%s/shrink", e->d_name);
		fd = open(path, O_WRONLY);
		if (fd >= 0) {
			if (write(fd, "1", 1) < 0) {
				/* not every cache can be shrunk */
			}
			close(fd);
		}
	}
	if (d)
		closedir(d);
}

static void print_keyusers(const char *stage)
{
	FILE *f = fopen("/proc/key-users", "r");
	char line[256];

	while (f && fgets(line, sizeof(line), f))
		printf("BENCH-KEYUSERS %s %s", stage, line);
	if (f)
		fclose(f);
	fflush(stdout);
}

struct mem {
	long keys, slab_bytes, slab_kb;
};

static struct mem mem_snapshot(const char *stage)
{
	struct mem m = { 0 };
	char line[512];
	FILE *f;

	shrink_slabs();
	print_keyusers(stage);
	m.keys = root_keys();
	/* The keys themselves, unless there are too many to be of interest. */
	f = m.keys < 200 ? fopen("/proc/keys", "r") : NULL;
	while (f && fgets(line, sizeof(line), f))
		printf("BENCH-KEYS %s %s", stage, line);
	if (f)
		fclose(f);
	f = fopen("/proc/slabinfo", "r");
	if (!f)
		printf("BENCH-META no-slabinfo /proc/slabinfo: %s\n", strerror(errno));
	while (f && fgets(line, sizeof(line), f)) {
		char name[128];
		long active, num, size;

		if (sscanf(line, "%127s %ld %ld %ld", name, &active, &num, &size) != 4)
			continue;
		printf("BENCH-SLAB %s %s %ld %ld %ld\n", stage, name, active, num, size);
		m.slab_bytes += active * size;
	}
	if (f)
		fclose(f);
	f = fopen("/proc/meminfo", "r");
	while (f && fgets(line, sizeof(line), f)) {
		char name[64];
		long kb;

		if (sscanf(line, "%63[^:]: %ld", name, &kb) == 2 &&
		    (!strcmp(name, "Slab") || !strcmp(name, "SUnreclaim") ||
		     !strcmp(name, "SReclaimable") || !strcmp(name, "MemFree"))) {
			printf("BENCH-MEMINFO %s %s %ld\n", stage, name, kb);
			if (!strcmp(name, "Slab"))
				m.slab_kb = kb;
		}
	}
	if (f)
		fclose(f);
	print_stats(stage);
	fflush(stdout);
	return m;
}

/* ---- the benchmarks ---- */

static int cmd_latency(int argc, char **argv)
{
	long n = 2000, n_rk = 2000, gap_ms = 10, i, done[NPATHS] = { 0 };
	unsigned mask = parse_paths("keyagentd,keyagentd-sig,agent,channel,request-key,floor,chan-floor");
	long errors[NPATHS] = { 0 }, first_err[NPATHS] = { 0 };
	long long *samples[NPATHS];
	struct worker w[NPATHS];
	long long t0 = now_ns();
	int opt, p, k;

	while ((opt = getopt(argc, argv, "n:N:g:p:P:L:")) != -1) {
		switch (opt) {
		case 'P': parse_pin(optarg); break;
		case 'L': suffix = optarg; break;
		case 'n': n = atol(optarg); break;
		case 'N': n_rk = atol(optarg); break;
		case 'g': gap_ms = atol(optarg); break;
		case 'p': mask = parse_paths(optarg); break;
		default: die("usage: latency [-n SAMPLES] [-N RK_SAMPLES] [-g GAP_MS] [-p PATHS]");
		}
	}
	if (n_rk > n)
		n_rk = n;
	for (p = 0; p < NPATHS; p++) {
		samples[p] = calloc(n, sizeof(long long));
		w[p].pid = 0;
		if ((mask & (1u << p)) && worker_start(&w[p], p) < 0)
			mask &= ~(1u << p);
	}
	printf("BENCH-META latency%s samples=%ld rk_samples=%ld gap_ms=%ld\n", suffix, n, n_rk, gap_ms);
	printf("latency: %ld rounds, one request per path per round, paths interleaved\n", n);
	print_stats("latency-start");
	fflush(stdout);
	for (i = 0; i < n; i++) {
		/* Rotate the order, so that no path always follows request-key. */
		for (k = 0; k < NPATHS; k++) {
			struct res r;

			p = (i + k) % NPATHS;
			if (!(mask & (1u << p)) || (p == P_RK && i >= n_rk))
				continue;
			r = worker_call(&w[p], OP_LATENCY, i, 0);
			if (r.status) {
				errors[p]++;
				if (!first_err[p])
					first_err[p] = r.status;
			} else {
				samples[p][done[p]++] = r.ns;
			}
			sleep_ms(gap_ms);
		}
		if (i % 250 == 249) {
			printf("latency: %ld rounds in %.0f s\n", i + 1, (now_ns() - t0) / 1e9);
			fflush(stdout);
		}
	}
	print_stats("latency-end");
	for (p = 0; p < NPATHS; p++) {
		if (!(mask & (1u << p)))
			continue;
		worker_stop(&w[p]);
		for (i = 0; i < done[p]; i++) {
			if (i % 20 == 0)
				printf("%sBENCH-LAT %s%s", i ? "\n" : "", paths[p].name, suffix);
			printf(" %.1f", samples[p][i] / 1000.0);
		}
		if (done[p])
			printf("\n");
		printf("BENCH-LATERR %s%s %ld %s\n", paths[p].name, suffix, errors[p],
		       errors[p] ? strerror(-(int)first_err[p]) : "-");
	}
	printf("latency (us)           %8s %8s %8s %8s %6s\n", "n", "p50", "p90", "p99", "errors");
	for (p = 0; p < NPATHS; p++) {
		char name[64];

		if (!(mask & (1u << p)))
			continue;
		qsort(samples[p], done[p], sizeof(long long), cmp_ll);
		snprintf(name, sizeof(name), "%s%s", paths[p].name, suffix);
		printf("  %-20s %8ld %8.0f %8.0f %8.0f %6ld\n", name, done[p],
		       pct(samples[p], done[p], 50) / 1e3, pct(samples[p], done[p], 90) / 1e3,
		       pct(samples[p], done[p], 99) / 1e3, errors[p]);
	}
	printf("latency: done in %.0f s\n", (now_ns() - t0) / 1e9);
	fflush(stdout);
	return 0;
}

static int cmd_throughput(int argc, char **argv)
{
	unsigned mask = parse_paths("keyagentd,keyagentd-sig,agent,channel,request-key");
	long ms = 2000, rk_ms = 6000, reps = 5, settle_keys, rep;
	char *levels = strdup("1,2,4,8"), *tok, *save = NULL, *copy;
	struct worker w[NPATHS];
	int opt, p;

	while ((opt = getopt(argc, argv, "l:t:T:r:p:P:L:")) != -1) {
		switch (opt) {
		case 'P': parse_pin(optarg); break;
		case 'L': suffix = optarg; break;
		case 'l': levels = strdup(optarg); break;
		case 't': ms = atol(optarg); break;
		case 'T': rk_ms = atol(optarg); break;
		case 'r': reps = atol(optarg); break;
		case 'p': mask = parse_paths(optarg); break;
		default: die("usage: throughput [-l LEVELS] [-t MS] [-T RK_MS] [-r REPS] [-p PATHS]");
		}
	}
	mask &= ~(1u << P_FLOOR | 1u << P_CFLOOR);
	for (p = 0; p < NPATHS; p++) {
		w[p].pid = 0;
		if ((mask & (1u << p)) && worker_start(&w[p], p) < 0)
			mask &= ~(1u << p);
	}
	printf("BENCH-META throughput%s window_ms=%ld rk_window_ms=%ld levels=%s reps=%ld\n",
	       suffix, ms, rk_ms, levels, reps);
	printf("throughput (constructions/s), %ld repetitions of each level\n", reps);
	fflush(stdout);
	settle_keys = root_keys();
	for (rep = 0; rep < reps; rep++) {
		copy = strdup(levels);
		for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
			int conc = atoi(tok);

			for (p = 0; p < NPATHS; p++) {
				struct res r;

				if (!(mask & (1u << p)))
					continue;
				r = worker_call(&w[p], OP_THROUGHPUT, conc, p == P_RK ? rk_ms : ms);
				printf("BENCH-TPUT %s%s %d %ld %ld %.0f %s %ld\n", paths[p].name, suffix, conc,
				       r.count, r.errors, r.ns / 1e3,
				       r.status ? strerror(-(int)r.status) : "-", rep);
				printf("  %s%s x%d: %8.1f/s (%ld in %.2f s, %ld errors)\n",
				       paths[p].name, suffix, conc, r.ns ? r.count / (r.ns / 1e9) : 0.0,
				       r.count, r.ns / 1e9, r.errors);
				fflush(stdout);
				/* The next run starts with the keys of this one collected. */
				gc_settle(settle_keys, 30000, 200);
			}
		}
		free(copy);
	}
	print_stats("throughput-end");
	for (p = 0; p < NPATHS; p++)
		if (mask & (1u << p))
			worker_stop(&w[p]);
	return 0;
}

/* Mean ns per request_key() over @b lookups of @desc, which must give @want. */
static double lookup_batch(const char *desc, long want, long b)
{
	long long t0 = now_ns();
	long i, r;

	for (i = 0; i < b; i++) {
		r = request(desc, NULL, 0);
		if (r != want)
			die("request_key(%s) gave %ld, expected %ld", desc, r, want);
	}
	return (double)(now_ns() - t0) / b;
}

static void module_state(int loaded, const char *ko)
{
	const char *insmod[] = { "insmod", ko, NULL }, *rmmod[] = { "rmmod", "keyagent", NULL };

	if (module_loaded() == loaded)
		return;
	if (run(loaded ? insmod : rmmod) != 0)
		die("%s failed", loaded ? "insmod" : "rmmod");
	/* Let module load/unload work (RCU tasks, key type GC) finish. */
	sleep_ms(300);
}

static int cmd_overhead(int argc, char **argv)
{
	static const char *const lookups[2] = { "existing", "negative" };
	static const char *const states[2] = { "unloaded", "loaded" };
	long rounds = 20, batch = 1000, batches = 10, r, k;
	const char *ko = MODULE_KO;
	int opt, s, l, was_loaded = module_loaded();
	double *v[2][2];
	long nv[2][2] = { { 0 } }, existing;

	while ((opt = getopt(argc, argv, "r:b:k:m:")) != -1) {
		switch (opt) {
		case 'r': rounds = atol(optarg); break;
		case 'b': batch = atol(optarg); break;
		case 'k': batches = atol(optarg); break;
		case 'm': ko = optarg; break;
		default: die("usage: overhead [-r ROUNDS] [-b BATCH] [-k BATCHES] [-m MODULE]");
		}
	}
	for (l = 0; l < 2; l++)
		for (s = 0; s < 2; s++)
			v[l][s] = calloc(rounds * batches, sizeof(double));
	if (keyctl_join_session_keyring(NULL) < 0)
		die("join_session_keyring: %m");
	existing = add_key("user", "bench-ovh:existing", "x", 1, KEY_SPEC_SESSION_KEYRING);
	if (existing < 0)
		die("add_key: %m");
	/* A negative key, made by /sbin/request-key (bench-neg:* is negated for an hour). */
	if (request("bench-neg:ovh", CALLOUT, KEY_SPEC_SESSION_KEYRING) != -ENOKEY ||
	    request("bench-neg:ovh", NULL, 0) != -ENOKEY)
		die("could not make a negative key (see /etc/request-key.d/)");
	/* Warm up: the emulator translates the code paths on first use. */
	for (k = 0; k < 2 * batches; k++) {
		lookup_batch("bench-ovh:existing", existing, batch);
		lookup_batch("bench-neg:ovh", -ENOKEY, batch);
	}
	printf("BENCH-META overhead rounds=%ld batch=%ld batches=%ld\n", rounds, batch, batches);
	printf("overhead: %ld rounds of module loaded/unloaded (ABBA), %ld x %ld lookups each\n",
	       rounds, batches, batch);
	fflush(stdout);
	for (r = 0; r < rounds; r++) {
		for (int j = 0; j < 2; j++) {
			/* ABBA: loaded first in odd rounds, unloaded first in even ones. */
			s = (r % 2) ? !j : j;
			module_state(s, ko);
			/* warm-up */
			lookup_batch("bench-ovh:existing", existing, batch / 10 + 1);
			lookup_batch("bench-neg:ovh", -ENOKEY, batch / 10 + 1);
			printf("BENCH-OVH-PHASE %ld %s\n", r, states[s]);
			for (k = 0; k < batches; k++) {
				v[0][s][nv[0][s]++] = lookup_batch("bench-ovh:existing", existing, batch);
				v[1][s][nv[1][s]++] = lookup_batch("bench-neg:ovh", -ENOKEY, batch);
			}
			for (l = 0; l < 2; l++) {
				printf("BENCH-OVH %s %s %ld", lookups[l], states[s], r);
				for (k = nv[l][s] - batches; k < nv[l][s]; k++)
					printf(" %.1f", v[l][s][k]);
				printf("\n");
			}
		}
	}
	module_state(was_loaded, ko);
	printf("overhead (ns per request_key, median of %ld-lookup batches)\n", batch);
	for (l = 0; l < 2; l++) {
		double u = median_d(v[l][0], nv[l][0]), ld = median_d(v[l][1], nv[l][1]);

		printf("  %-9s unloaded %8.0f  loaded %8.0f  ratio %.3f\n", lookups[l], u, ld,
		       ld / u);
	}
	fflush(stdout);
	return 0;
}

static int cmd_memory(int argc, char **argv)
{
	long n = 100000, warmup = 200, conc = 2, base_keys;
	struct mem before, after, gc;
	struct worker w;
	struct res r;
	int opt;

	while ((opt = getopt(argc, argv, "n:c:w:")) != -1) {
		switch (opt) {
		case 'n': n = atol(optarg); break;
		case 'c': conc = atol(optarg); break;
		case 'w': warmup = atol(optarg); break;
		default: die("usage: memory [-n CONSTRUCTIONS] [-c REQUESTERS] [-w WARMUP]");
		}
	}
	/* Start from a quiet state: the keys of earlier runs collected. */
	quiesce();
	base_keys = root_keys();
	print_keyusers("start");
	if (worker_start(&w, P_MIN) < 0)
		die("cannot start the agent");
	printf("BENCH-META memory constructions=%ld requesters=%ld warmup=%ld path=%s\n", n,
	       conc, warmup, paths[P_MIN].name);
	fflush(stdout);
	/* Warm up (per-CPU caches, the agent's keyring), then collect everything. */
	r = worker_call(&w, OP_CONSTRUCT, conc, warmup);
	worker_call(&w, OP_CLEAR, 0, 0);
	/* The agent's and the worker's keyrings and the agent key stay. */
	sleep_ms(1000);
	quiesce();
	before = mem_snapshot("before");
	printf("memory: %ld constructions through the agent, %ld requesters\n", n, conc);
	fflush(stdout);
	r = worker_call(&w, OP_CONSTRUCT, conc, n);
	printf("BENCH-MEMRUN %ld %ld %.0f %s\n", r.count, r.errors, r.ns / 1e3,
	       r.status ? strerror(-(int)r.status) : "-");
	/* Let the module's reaper unlink the last authorisation keys. */
	sleep_ms(1000);
	after = mem_snapshot("after");
	worker_call(&w, OP_CLEAR, 0, 0);
	gc_settle(before.keys, 120000, 2000);
	gc = mem_snapshot("gc");
	printf("memory: %ld constructed in %.1f s (%ld errors)\n", r.count, r.ns / 1e9, r.errors);
	printf("  %-22s %10s %10s %10s\n", "", "before", "after", "after gc");
	printf("  %-22s %10ld %10ld %10ld\n", "keys (uid 0)", before.keys, after.keys, gc.keys);
	printf("  %-22s %10ld %10ld %10ld\n", "slab objects, KiB", before.slab_bytes / 1024,
	       after.slab_bytes / 1024, gc.slab_bytes / 1024);
	printf("  %-22s %10ld %10ld %10ld\n", "Slab (meminfo), KiB", before.slab_kb,
	       after.slab_kb, gc.slab_kb);
	fflush(stdout);
	worker_stop(&w);
	/* The agent's and the requesters' keyrings are gone with them. */
	gc_settle(base_keys, 30000, 0);
	quiesce();
	print_keyusers("exit");
	return 0;
}

/*
 * The key quota of an agent's user: constructions through an agent running as
 * an unprivileged user (@uid, default 1000; its quota is 200 keys and 20000
 * bytes by default), each key read back and unlinked by the requester (same
 * user), which then invalidates it. Prints how many were answered, the first
 * failure, and the user's quota bytes every 1000 constructions.
 */
static int cmd_quota(int argc, char **argv)
{
	long n = 8000, i, ok = 0, failed = 0, first_at = -1, first_err = 0, qb = 0;
	long first_keys = 0, first_bytes = 0;
	unsigned uid = 1000;
	struct worker w;
	int opt;

	while ((opt = getopt(argc, argv, "n:u:")) != -1) {
		switch (opt) {
		case 'n': n = atol(optarg); break;
		case 'u': uid = atoi(optarg); break;
		default: die("usage: quota [-n CONSTRUCTIONS] [-u UID]");
		}
	}
	fflush(stdout);
	if (setgroups(0, NULL) < 0 || setgid(uid) < 0 || setuid(uid) < 0)
		die("cannot become uid %u: %m", uid);
	/*
	 * Dropping root without exec leaves the process undumpable, which the
	 * module takes for a requester that gained privilege (a setuid program):
	 * its own user's agent would not serve it. A user's login session is
	 * dumpable.
	 */
	if (prctl(PR_SET_DUMPABLE, 1) < 0)
		die("prctl(PR_SET_DUMPABLE): %m");
	if (worker_start(&w, P_MIN) < 0)
		die("cannot start the agent as uid %u", uid);
	user_keys(uid, &qb);
	printf("BENCH-QUOTA uid=%u start qnbytes=%ld\n", uid, qb);
	for (i = 0; i < n; i++) {
		struct res r = worker_call(&w, OP_LATENCY, i, 0);

		if (r.status) {
			failed++;
			if (first_at < 0) {
				first_at = i;
				first_err = r.status;
				first_keys = user_keys(uid, &first_bytes);
			}
			/* let a full key count quota drain */
			sleep_ms(2);
		} else {
			ok++;
		}
		if (i % 1000 == 999) {
			sleep_ms(200);
			user_keys(uid, &qb);
			printf("BENCH-QUOTA uid=%u at=%ld answered=%ld failed=%ld qnbytes=%ld\n", uid,
			       i + 1, ok, failed, qb);
		}
	}
	worker_stop(&w);
	printf("BENCH-QUOTA uid=%u done answered=%ld failed=%ld first_failure=%ld error=%s "
	       "keys_then=%ld qnbytes_then=%ld\n", uid, ok, failed, first_at,
	       first_err ? strerrorname_np(-(int)first_err) : "-", first_keys, first_bytes);
	printf("quota (uid %u): %ld constructions, %ld answered, %ld failed%s%s\n", uid, n, ok,
	       failed, first_err ? ", first failure: " : "",
	       first_err ? strerror(-(int)first_err) : "");
	fflush(stdout);
	return 0;
}

/* ---- profile: function_graph traces of a few constructions ---- */

#define TRACING "/sys/kernel/tracing/"

static int tracefs(const char *file, const char *value, int append)
{
	char path[128];
	int fd, ok;

	snprintf(path, sizeof(path), TRACING "%s", file);
	fd = open(path, O_WRONLY | (append ? O_APPEND : O_TRUNC));
	if (fd < 0)
		return -1;
	ok = write(fd, value, strlen(value)) == (ssize_t)strlen(value);
	close(fd);
	return ok ? 0 : -1;
}

/*
 * Replaces the contents of @file with the comma-separated items of @list:
 * one open, one write per item (the kernel takes one item per write).
 */
static void tracefs_list(const char *file, const char *list)
{
	char *copy = strdup(list), *tok, *save = NULL, path[128], item[256];
	int fd;

	snprintf(path, sizeof(path), TRACING "%s", file);
	fd = open(path, O_WRONLY | O_TRUNC);
	if (fd < 0)
		die("open %s: %m", path);
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		snprintf(item, sizeof(item), "%s ", tok);
		if (write(fd, item, strlen(item)) < 0)
			printf("BENCH-META profile-missing %s %s\n", file, tok);
	}
	close(fd);
	free(copy);
}

/*
 * The functions the tracer may patch: the system calls the paths make and the
 * key and signal code under them. Patching kernel text while the other vCPU
 * runs it is what the emulator handles worst, so the filter is kept to code
 * the benchmark exercises, it is patched once, and never unpatched (the
 * tracer stays on, with tracing off, until the guest powers off).
 */
static const char FILTER[] =
	"__x64_sys_request_key,__x64_sys_keyctl,__x64_sys_read,__x64_sys_write,"
	"__x64_sys_poll,__x64_sys_ppoll,__x64_sys_rt_sigqueueinfo,"
	"key_*,keyring_*,keyctl_*,__key_*,keyagent_*,*request_key*,lookup_user_key,"
	"search_*keyrings*,construct_*key*,wait_for_key_construction,"
	"send_sig_info,group_send_sig_info,kill_pid_info_type";

static const char SYSCALLS[] =
	"__x64_sys_request_key,__x64_sys_keyctl,__x64_sys_read,__x64_sys_write,"
	"__x64_sys_poll,__x64_sys_ppoll,__x64_sys_rt_sigqueueinfo";

static const char KERNEL[] =
	"call_sbin_request_key,keyctl_assume_authority,keyctl_instantiate_key_common,"
	"key_alloc,request_key_auth_new";

static const struct pass {
	const char *label;	/* in the output */
	const char *paths;
	const char *graph;	/* set_graph_function */
	int depth, pin_answerer, pin_requester;
} passes[] = {
	/* the system calls of each path, and where the time goes */
	{ "syscalls", "keyagentd,agent,floor", SYSCALLS, 3, -1, -1 },
	/* the same across vCPUs */
	{ "cross-cpu", "agent,floor", SYSCALLS, 3, 0, 1 },
	/* the kernel's side of a construction through an agent */
	{ "kernel", "agent", KERNEL, 3, -1, -1 },
};

/*
 * Traces @n latency samples of each path of each pass: function_graph from
 * the pass's functions down to its depth (only functions in FILTER), and the
 * scheduler's wakeups and switches. The trace has every process; the report
 * keeps the requester's and the answering process's (BENCH-PROFPIDS).
 */
static int cmd_profile(int argc, char **argv)
{
	struct pass custom = { "custom", "agent", NULL, 3, -1, -1 };
	const struct pass *list = passes;
	unsigned k, npasses = sizeof(passes) / sizeof(passes[0]);
	long n = 30, warm = 50, i;
	char line[1024], num[16], tag[64];
	int opt, p;

	while ((opt = getopt(argc, argv, "n:g:d:p:P:")) != -1) {
		switch (opt) {
		case 'n': n = atol(optarg); break;
		case 'P':
			if (sscanf(optarg, "%d,%d", &custom.pin_answerer, &custom.pin_requester) != 2)
				die("-P wants ANSWERER_CPU,REQUESTER_CPU");
			break;
		/* one pass of your own instead: graph functions, depth, paths */
		case 'g': custom.graph = optarg; break;
		case 'd': custom.depth = atoi(optarg); break;
		case 'p': custom.paths = optarg; break;
		default: die("usage: profile [-n REQUESTS] [-g FUNC,... [-d DEPTH] [-p PATHS] [-P A,R]]");
		}
	}
	if (custom.graph) {
		list = &custom;
		npasses = 1;
	}
	if (access(TRACING "trace", F_OK) < 0 &&
	    mount("nodev", "/sys/kernel/tracing", "tracefs", 0, NULL) < 0)
		die("mount tracefs: %m");
	/* Set up once: this is what patches kernel text. */
	tracefs("tracing_on", "0", 0);
	tracefs("current_tracer", "nop", 0);
	tracefs_list("set_ftrace_filter", FILTER);
	tracefs_list("set_graph_function", SYSCALLS);
	tracefs("events/sched/sched_switch/enable", "1", 0);
	tracefs("events/sched/sched_wakeup/enable", "1", 0);
	if (tracefs("current_tracer", "function_graph", 0) < 0)
		die("tracefs current_tracer function_graph: %m");
	/* The tracer's own options exist once it is the current tracer. */
	tracefs("trace_options", "funcgraph-abstime", 0);
	tracefs("trace_options", "funcgraph-proc", 0);
	tracefs("trace_options", "funcgraph-tail", 0);
	tracefs("trace_options", "nofuncgraph-irqs", 0);

	for (k = 0; k < npasses; k++) {
		const struct pass *ps = &list[k];
		unsigned mask = parse_paths(ps->paths);

		pin_answerer = ps->pin_answerer;
		pin_requester = ps->pin_requester;
		tracefs_list("set_graph_function", ps->graph);
		snprintf(num, sizeof(num), "%d", ps->depth);
		tracefs("max_graph_depth", num, 0);
		for (p = 0; p < NPATHS; p++) {
			struct worker w;
			FILE *f;

			if (!(mask & (1u << p)) || worker_start(&w, p) < 0)
				continue;
			for (i = 0; i < warm; i++) {
				worker_call(&w, OP_LATENCY, 1000000 + i, 0);
				sleep_ms(5);
			}
			snprintf(tag, sizeof(tag), "%s/%s", ps->label, paths[p].name);
			printf("BENCH-PROFPIDS %s requester=%d answerer=%d depth=%d\n", tag, w.pid,
			       w.agent, ps->depth);
			tracefs("trace", "", 0);
			tracefs("tracing_on", "1", 0);
			for (i = 0; i < n; i++) {
				struct res r = worker_call(&w, OP_LATENCY, 2000000 + i, 0);

				printf("BENCH-PROFLAT %s %.1f\n", tag, r.ns / 1e3);
				sleep_ms(5);
			}
			tracefs("tracing_on", "0", 0);
			f = fopen(TRACING "trace", "r");
			while (f && fgets(line, sizeof(line), f))
				if (line[0] != '#')
					printf("BENCH-TRACE %s %s", tag, line);
			if (f)
				fclose(f);
			fflush(stdout);
			worker_stop(&w);
		}
		printf("profile: %s: traced %ld constructions per path\n", ps->label, n);
		fflush(stdout);
	}
	pin_answerer = pin_requester = -1;
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOFBF, 1 << 16);
	signal(SIGPIPE, SIG_IGN);
	if (argc < 2)
		die("usage: keyagent-bench latency|throughput|overhead|memory|quota|profile [OPTIONS]");
	optind = 2;
	if (!strcmp(argv[1], "latency"))
		return cmd_latency(argc, argv);
	if (!strcmp(argv[1], "throughput"))
		return cmd_throughput(argc, argv);
	if (!strcmp(argv[1], "overhead"))
		return cmd_overhead(argc, argv);
	if (!strcmp(argv[1], "memory"))
		return cmd_memory(argc, argv);
	if (!strcmp(argv[1], "profile"))
		return cmd_profile(argc, argv);
	if (!strcmp(argv[1], "quota"))
		return cmd_quota(argc, argv);
	die("unknown benchmark '%s'", argv[1]);
}
