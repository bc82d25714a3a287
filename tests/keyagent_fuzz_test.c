// SPDX-License-Identifier: GPL-2.0
/*
 * A seeded fuzzer for keyagent and the key syscalls around it.
 *
 *   keyagent_fuzz_test [-s SEED] [-d SECONDS] [-w WORKERS] [-a AGENTS]
 *                      [-r] [-T DIR]
 *
 *   -s SEED     replay a run (default: a random seed, printed)
 *   -d SECONDS  how long to fuzz (default 45)
 *   -w N        worker processes (default 4)
 *   -a N        agent processes (default 8)
 *   -r          do not unload and reload the module
 *   -T DIR      log every operation of every process to
 *               DIR/<role><index>.<generation>.log
 *
 * Workers make random sequences of add_key(), request_key() and every
 * keyctl() operation through the raw syscalls, with arguments biased to edge
 * values: the special keyring ids, the internal key types, unknown types,
 * empty and huge descriptions and payloads, and the serials of keys seen so
 * far (agent keys, authorisation keys, keys under construction, harvested
 * from the syscalls' results, the agents' signals and /proc/keys); some
 * requests come from children that die waiting, run as another user or in a
 * new user namespace, and some are the kernel's own (dns_query() and
 * override-credential requests through tests/kmod, from the worker or a
 * kernel thread). Agents (some threaded, some in a user namespace or running
 * as another user, some with a tiny RLIMIT_SIGPENDING, some scoped to their
 * network namespace for dns_resolver, keyagent_test or user) register and
 * answer, ignore, answer twice or late, reject, negate, leak, move or
 * invalidate their authorisation key, tamper with the keyrings holding it,
 * request keys with its authority, exec, or die at random, and are killed
 * and restarted; workers register as agents too. Channels (/dev/keyagent):
 * some agents are channel agents, which answer in batches, late, twice,
 * spoilt or not at all, die, replace their channel or have a child answer;
 * workers open channels, register them ("fd N", valid and not), read with
 * random buffer sizes, write valid, garbled and random answers, close them
 * (also under a read blocked in another thread, which a signal must then
 * end), share them with children by fork() and pass them over SCM_RIGHTS
 * (to themselves, to another process, or left in flight in a socket that is
 * closed). A reloader unloads and reloads the module (asking the holders of
 * channels to close them first: an open channel holds the module) and
 * changes its parameters (max_pending down to 0, global_types among valid
 * and invalid lists).
 *
 * Each process draws its operations from its own generator, seeded from the
 * run's seed, its role and its index: the same seed gives every process the
 * same sequence of operations (the serials the kernel hands out, and the
 * timing, differ from run to run).
 *
 * It fails when a syscall (request_key() above all) blocks longer than
 * request_timeout + 60 s (a read of a channel blocked by design only until
 * a signal interrupts it), when a channel read returns a malformed record, when a key is still under construction once
 * everything has stopped and the timeout has passed (the 'U' flag in
 * /proc/keys, or nkeys != nikeys in /proc/key-users), when an agent key
 * still counts pending constructions then, when the module cannot be
 * unloaded at the end, or when an agent cannot answer a plain request
 * afterwards. The VM runner fails the run on any kernel splat.
 */
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "kselftest.h"
#include "keyagent_util.h"

#ifndef KEYCTL_MOVE
#define KEYCTL_MOVE 30
#endif
#ifndef KEYCTL_CAPABILITIES
#define KEYCTL_CAPABILITIES 31
#endif
#ifndef KEYCTL_WATCH_KEY
#define KEYCTL_WATCH_KEY 32
#endif
#ifndef KEY_SPEC_REQUESTOR_KEYRING
#define KEY_SPEC_REQUESTOR_KEYRING -8
#endif

#define TIMEOUT_S 3		/* request_timeout during the run */
/*
 * A syscall may block this much longer than request_timeout. It waits for
 * /sbin/request-key (fork and exec in the debug guest), for a reload
 * convoy, for the module's reaper: about 0.5 s on an idle host, 5 s seen on
 * a loaded one. A hang is forever; this only says when to report it: more
 * than 10x what a loaded host needs.
 */
#define SLACK_MS 60000
#define LIMIT_MS (TIMEOUT_S * 1000 + SLACK_MS)
#define EPOCH_MS 5000		/* a new shared session keyring this often */

#define MAX_WORKERS 16
#define MAX_AGENTS 16
#define SLOTS (MAX_WORKERS + MAX_AGENTS + 3)
#define MANAGER_SLOT (MAX_WORKERS + MAX_AGENTS)
#define RELOADER_SLOT (MAX_WORKERS + MAX_AGENTS + 1)
#define RING 16
#define DESC 120
#define POOL 128

/* ----------------------------------------------------------------------
 * Random numbers: splitmix64, one generator per process and one per op.
 */
struct rng {
	uint64_t s;
};

static uint64_t next(struct rng *r)
{
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint64_t mix(uint64_t seed, uint64_t a, uint64_t b)
{
	struct rng r = { seed ^ (a * 0x100000001b3ULL) ^ (b << 32) };

	next(&r);
	return next(&r);
}

static unsigned int rnd(struct rng *r, unsigned int n)
{
	return n ? next(r) % n : 0;
}

static int chance(struct rng *r, unsigned int percent)
{
	return rnd(r, 100) < percent;
}

#define PICK(r, array) ((array)[rnd(r, sizeof(array) / sizeof((array)[0]))])

/* ----------------------------------------------------------------------
 * State shared by every process of the run.
 */
enum pool { P_ANY, P_KEYRING, P_AGENT, P_UC, P_AUTH, P_NPOOLS };

enum role { R_WORKER, R_AGENT, R_MANAGER, R_RELOADER };

struct slot {
	volatile pid_t pid;
	volatile int role, index, gen;
	volatile long busy_since;	/* start of the syscall in flight, ms; 0: none */
	volatile int hung;		/* reported by the watchdog */
	volatile unsigned long iter;
	volatile unsigned int ring_pos;
	char ring[RING][DESC];		/* the last operations, newest last */
};

#define NOPS 40

struct shared {
	volatile int stop;
	volatile int epoch;
	volatile int module_gen;
	volatile int failures;
	volatile key_serial_t pool[P_NPOOLS][POOL];
	volatile unsigned long ops[NOPS], ops_ok[NOPS], ops_ms[NOPS];
	volatile unsigned long counters[9];	/* the module's, summed over reloads */
	volatile unsigned long requests, requests_ok, request_errno[150];
	volatile unsigned long agent_signals, agent_answers, agents_started;
	volatile unsigned long reloads, unload_busy, param_changes, kernel_requests;
	volatile unsigned long chan_records, chan_answers, chan_agents;
	volatile int unloading;		/* the reloader is unloading: close channels */
	volatile long max_request_ms;
	int sup_pid;
	int parts;			/* session keyrings per epoch */
	key_serial_t protected[4];	/* root's user, user session and persistent keyrings */
	volatile key_serial_t sessions[MAX_WORKERS];	/* this epoch's session keyrings */
	volatile key_serial_t part_key[MAX_WORKERS];	/* the last agent registered in each */
	volatile pid_t part_pid[MAX_WORKERS];
	struct slot slot[SLOTS];
};

static struct shared *sh;
static struct slot *self;
static FILE *trace;
static const char *trace_dir;
static char scratch[70000];

static long now(void)
{
	return now_ms();
}

static void bump(volatile unsigned long *counter)
{
	__atomic_fetch_add(counter, 1, __ATOMIC_RELAXED);
}

static void pool_add(enum pool p, key_serial_t serial)
{
	static unsigned int pos;

	if (serial <= 0)
		return;
	pos = pos * 1103515245 + 12345 + serial;
	sh->pool[p][(pos >> 8) % POOL] = serial;
	if (p != P_ANY)
		sh->pool[P_ANY][(pos >> 16) % POOL] = serial;
}

static key_serial_t pool_pick(struct rng *r, enum pool p)
{
	key_serial_t serial = sh->pool[p][rnd(r, POOL)];

	return serial ? serial : sh->pool[P_ANY][rnd(r, POOL)];
}

/*
 * Workers and agents share session keyrings by name: one per partition (a
 * worker's partition is its index modulo their number, an agent's the same),
 * renewed every epoch, so that what a worker breaks in its session is
 * repaired soon.
 */
static void session_name(char *buf, size_t size, int epoch, int part)
{
	snprintf(buf, size, "keyagent-fuzz.%d.%d.%d", sh->sup_pid, epoch, part % sh->parts);
}

/* Records what the process is about to do (for the watchdog and -T). */
static __attribute__((format(printf, 1, 2))) void note(const char *fmt, ...)
{
	char *d = self->ring[self->ring_pos % RING];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(d, DESC, fmt, ap);
	va_end(ap);
	__atomic_fetch_add(&self->ring_pos, 1, __ATOMIC_RELEASE);
	if (trace)
		fprintf(trace, "%lu %s\n", self->iter, d);
}

/* A watched syscall: returns its result or -errno. */
static long sc(long nr, long a, long b, long c, long d, long e)
{
	long ret;

	self->busy_since = now();
	ret = syscall(nr, a, b, c, d, e);
	if (ret < 0)
		ret = -errno;
	self->busy_since = 0;
	return ret;
}

#define KEYCTL(cmd, a, b, c, d) \
	sc(__NR_keyctl, (cmd), (long)(a), (long)(b), (long)(c), (long)(d))

static void open_trace(const char *role, int index, int gen)
{
	char path[256];

	if (!trace_dir)
		return;
	if (trace)
		fclose(trace);
	snprintf(path, sizeof(path), "%s/%s%d.%d.log", trace_dir, role, index, gen);
	trace = fopen(path, "w");
	if (trace)
		setvbuf(trace, NULL, _IOLBF, 0);
}

static struct slot *take_slot(int index, enum role role, int gen)
{
	struct slot *s = &sh->slot[index];

	s->busy_since = 0;
	s->hung = 0;
	s->iter = 0;
	s->role = role;
	s->index = index;
	s->gen = gen;
	s->pid = getpid();
	return s;
}

/* Blocks every realtime signal (32 and 33 too, which glibc keeps to itself). */
static uint64_t rt_mask(void)
{
	uint64_t mask = 0;
	int sig;

	for (sig = 32; sig <= 64; sig++)
		mask |= 1ULL << (sig - 1);
	return mask;
}

static void block_rt_signals(void)
{
	uint64_t mask = rt_mask();

	syscall(__NR_rt_sigprocmask, SIG_BLOCK, &mask, NULL, 8);
}

static int rt_signalfd(void)
{
	uint64_t mask = rt_mask();

	return syscall(__NR_signalfd4, -1, &mask, 8, SFD_NONBLOCK | SFD_CLOEXEC);
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static int join_epoch(int epoch, int part)
{
	char name[64];

	session_name(name, sizeof(name), epoch, part);
	return KEYCTL(KEYCTL_JOIN_SESSION_KEYRING, name, 0, 0, 0);
}

/* ----------------------------------------------------------------------
 * Argument generators, biased to edge values.
 */
static const key_serial_t special_ids[] = {
	KEY_SPEC_THREAD_KEYRING, KEY_SPEC_PROCESS_KEYRING, KEY_SPEC_SESSION_KEYRING,
	KEY_SPEC_SESSION_KEYRING, KEY_SPEC_USER_KEYRING, KEY_SPEC_USER_SESSION_KEYRING,
	KEY_SPEC_GROUP_KEYRING, KEY_SPEC_REQKEY_AUTH_KEY, KEY_SPEC_REQUESTOR_KEYRING,
	0, -9, -100, INT_MIN, INT_MAX, 1,
};

static char *long_string(char c, size_t len)
{
	static char buf[4][8200];
	static int which;
	char *s = buf[which++ % 4];

	if (len > sizeof(buf[0]) - 1)
		len = sizeof(buf[0]) - 1;
	memset(s, c, len);
	s[len] = 0;
	return s;
}

/* Any key: special ids, the pools, or a random number. */
static key_serial_t gen_key(struct rng *r, key_serial_t own)
{
	switch (rnd(r, 20)) {
	case 0: case 1: case 2: case 3:
		return PICK(r, special_ids);
	case 4: case 5: case 6:
		return pool_pick(r, P_ANY);
	case 7: case 8:
		return pool_pick(r, P_AGENT);
	case 9: case 10:
		return pool_pick(r, P_UC);
	case 11:
		return pool_pick(r, P_AUTH);
	case 12: case 13:
		return pool_pick(r, P_KEYRING);
	case 14: case 15: case 16:
		return own ? own : pool_pick(r, P_ANY);
	case 17:
		return (key_serial_t)next(r);
	default:
		return rnd(r, 1000);
	}
}

/* A keyring, mostly: the session keyring first. */
static key_serial_t gen_keyring(struct rng *r, key_serial_t own)
{
	switch (rnd(r, 10)) {
	case 0: case 1: case 2:
		return KEY_SPEC_SESSION_KEYRING;
	case 3: case 4:
		return PICK(r, special_ids);
	case 5: case 6:
		return pool_pick(r, P_KEYRING);
	case 7:
		return own ? own : KEY_SPEC_THREAD_KEYRING;
	default:
		return gen_key(r, own);
	}
}

static const char *gen_type(struct rng *r, int for_request)
{
	static const char *const odd[] = {
		".request_key_auth", ".dead", "big_key", "asymmetric", "dns_resolver",
		"trusted", "", "fuzz", "USER", "user ", "keyagent\n",
		"0123456789012345678901234567890",	/* 31 */
		"01234567890123456789012345678901",	/* 32 */
		"012345678901234567890123456789012",	/* 33 */
		NULL,
	};
	unsigned int n = rnd(r, 100);

	if (for_request) {
		/* Types no agent serves go to /sbin/request-key, which is slow: rarely. */
		if (n < 84)
			return "user";
		if (n < 87)
			return "logon";
		if (n < 88)
			return "keyring";
		if (n < 89)
			return "keyagent";
		return PICK(r, odd);
	}
	if (n < 40)
		return "user";
	if (n < 48)
		return "logon";
	if (n < 63)
		return "keyring";
	if (n < 78)
		return "keyagent";
	return PICK(r, odd);
}

/* Descriptions of agent keys: the types served, valid and not. */
static const char *gen_agent_desc(struct rng *r)
{
	static const char *const odd[] = {
		"fuzz", "keyring", "keyagent", ".user", "", "us er", "user\n", "logon",
		"big_key", "0123456789012345678901234567890",
		"01234567890123456789012345678901", "\x01\xff", "%s%n",
	};
	unsigned int n = rnd(r, 100);

	if (n < 60)
		return "user";
	if (n < 70)
		return "logon";
	if (n < 75)
		return PICK(r, ((const char *[]){ "dns_resolver", "keyagent_test" }));
	if (n < 98)
		return PICK(r, odd);
	return long_string('u', rnd(r, 2) ? 4095 : 5000);
}

static const char *gen_desc(struct rng *r, const char *type, int unique_id, unsigned long iter)
{
	static char buf[4][96];
	static int which;
	char *s = buf[which++ % 4];
	unsigned int n = rnd(r, 100);

	if (type && strcmp(type, "keyagent") == 0 && n < 80)
		return gen_agent_desc(r);
	if (n < 35) {
		snprintf(s, sizeof(buf[0]), "fz:%u", rnd(r, 64));
		return s;
	}
	if (n < 85) {
		snprintf(s, sizeof(buf[0]), "fz:%d:%lu:%u", unique_id, iter, rnd(r, 1000000));
		return s;
	}
	switch (rnd(r, 12)) {
	case 0: return "";
	case 1: return "a";
	case 2: return long_string('d', 4095);
	case 3: return long_string('d', 4096);
	case 4: return long_string('d', 5000);
	case 5: return "keyagent";
	case 6: return ".x";
	case 7: return "\x01\x02\xff";
	case 8: return "%s%n%x";
	case 9: return "user";
	case 10: return NULL;
	default: return "x:";
	}
}

struct payload {
	const void *data;
	size_t len;
};

static struct payload gen_payload(struct rng *r, int agent)
{
	static int native[] = { 40, 32, 64, 31, 65, 0, -1, 0x7fffffff, 34, 63 };
	static char sig[16];
	struct payload p = { scratch, 0 };
	unsigned int n = rnd(r, 100);

	if (agent && n < 60) {
		p.len = snprintf(sig, sizeof(sig), "%u", 32 + rnd(r, 33));
		p.data = sig;
		return p;
	}
	if (agent && n < 70) {
		/* Scoped: admitted or refused (EPERM, EACCES) by type and credentials. */
		p.len = snprintf(sig, sizeof(sig), "%u net", 32 + rnd(r, 33));
		p.data = sig;
		return p;
	}
	if (agent && n < 80) {
		p.data = &native[rnd(r, 10)];
		p.len = 4;
		return p;
	}
	switch (rnd(r, 18)) {
	case 0: p.data = NULL; p.len = 0; break;
	case 1: p.data = ""; p.len = 0; break;
	case 16:
		p.data = PICK(r, ((const char *[]){ "40 net\n", "40 nett", "40  net", "net",
						      "40 net x", " 40 net", "40 net\n\n" }));
		p.len = strlen(p.data);
		break;
	case 17: p.data = "40 net\0x"; p.len = 8; break;
	case 2: p.data = "40\n"; p.len = 3; break;
	case 3: p.data = "040"; p.len = 3; break;
	case 4: p.data = "31"; p.len = 2; break;
	case 5: p.data = "65"; p.len = 2; break;
	case 6: p.data = NULL; p.len = 16; break;		/* EFAULT */
	case 7: p.data = (void *)16; p.len = 8; break;		/* EFAULT */
	case 8: p.len = 32767; break;
	case 9: p.len = 32768; break;
	case 10: p.len = chance(r, 20) ? 1024 * 1024 - 1 : 4096; break;
	case 11: p.len = chance(r, 20) ? 1024 * 1024 : 65536; break;
	default:
		p.len = snprintf(scratch, 64, "value-%u", rnd(r, 1000));
		break;
	}
	if (p.data == scratch && p.len > sizeof(scratch))
		p.len = sizeof(scratch);
	return p;
}

static const char *gen_callout(struct rng *r)
{
	static char buf[32];

	switch (rnd(r, 20)) {
	case 0: case 1: return NULL;
	case 2: return "";
	case 3: snprintf(buf, sizeof(buf), "reject:%u", 1 + rnd(r, 200)); return buf;
	case 4: return "negate";
	case 5: return long_string('c', PICK(r, ((size_t[]){ 1023, 1024, 4095, 4096, 5000 })));
	default: snprintf(buf, sizeof(buf), "c%u", rnd(r, 100)); return buf;
	}
}

static void *gen_buffer(struct rng *r, size_t *len)
{
	static const size_t lens[] = { 0, 1, 3, 4, 16, 64, 255, 4096, 65536 };

	*len = PICK(r, lens);
	switch (rnd(r, 10)) {
	case 0: return NULL;
	case 1: return (void *)16;
	case 2: return (void *)0xffff888000000000UL;
	default: return scratch;
	}
}

/* ----------------------------------------------------------------------
 * Answering constructions: what agents (and workers that registered as
 * agents) do with a signal.
 */
static long assume(key_serial_t target)
{
	note("assume_authority(%d)", target);
	return KEYCTL(KEYCTL_ASSUME_AUTHORITY, target, 0, 0, 0);
}

static long instantiate(struct rng *r, key_serial_t target, const char *callout)
{
	key_serial_t dest = 0;
	char payload[160];
	int len;

	len = snprintf(payload, sizeof(payload), "agent:%.100s", callout ? callout : "");
	if (chance(r, 10))
		dest = PICK(r, ((key_serial_t[]){ KEY_SPEC_REQUESTOR_KEYRING,
			KEY_SPEC_SESSION_KEYRING, KEY_SPEC_PROCESS_KEYRING, -9,
			KEY_SPEC_USER_KEYRING }));
	if (chance(r, 8)) {
		struct iovec iov[3] = {
			{ payload, len / 2 }, { NULL, 0 }, { payload + len / 2, len - len / 2 },
		};

		note("instantiate_iov(%d, 3 iovecs, dest %d)", target, dest);
		return KEYCTL(KEYCTL_INSTANTIATE_IOV, target, iov, 3, dest);
	}
	if (chance(r, 4)) {
		size_t big = PICK(r, ((size_t[]){ 0, 32767, 32768, 65536 }));

		note("instantiate(%d, %zu bytes, dest %d)", target, big, dest);
		return KEYCTL(KEYCTL_INSTANTIATE, target, big ? scratch : NULL, big, dest);
	}
	note("instantiate(%d, \"%.20s\", dest %d)", target, payload, dest);
	return KEYCTL(KEYCTL_INSTANTIATE, target, payload, len, dest);
}

/* Reads the callout of the construction whose authority we hold. */
static char *read_callout(char *buf, size_t size)
{
	long n;

	note("read(@reqkey_auth)");
	n = KEYCTL(KEYCTL_READ, KEY_SPEC_REQKEY_AUTH_KEY, buf, size - 1, 0);
	if (n < 0)
		return NULL;
	buf[n < (long)size - 1 ? n : (long)size - 1] = 0;
	return buf;
}

/* Answers @target as its callout says ("reject:N", "negate", else instantiate). */
static long answer(struct rng *r, key_serial_t target, int honour_callout)
{
	char callout[128];
	const char *c;
	long ret;

	if (assume(target) < 0)
		return -1;
	c = read_callout(callout, sizeof(callout));
	if (honour_callout && c && strncmp(c, "reject:", 7) == 0) {
		note("reject(%d, %d)", target, atoi(c + 7));
		ret = KEYCTL(KEYCTL_REJECT, target, 1, atoi(c + 7), 0);
	} else if (honour_callout && c && strcmp(c, "negate") == 0) {
		note("negate(%d)", target);
		ret = KEYCTL(KEYCTL_NEGATE, target, 1, 0, 0);
	} else {
		ret = instantiate(r, target, c);
	}
	assume(0);
	if (ret == 0)
		bump(&sh->agent_answers);
	return ret;
}

/*
 * A request made with the authority of the construction @arg, in a thread
 * (which inherits the authority): it may be routed back to us, so we must
 * not wait for it.
 */
static void *thread_request(void *arg)
{
	key_serial_t target = (long)arg;
	char desc[64], payload[] = "nested";

	snprintf(desc, sizeof(desc), "fz:nested:%d", target);
	syscall(__NR_request_key, "user", desc, "n", KEY_SPEC_REQUESTOR_KEYRING);
	syscall(__NR_keyctl, KEYCTL_INSTANTIATE, target, payload, sizeof(payload) - 1, 0);
	return NULL;
}

/*
 * One construction handed to us: answer it, or not, in one of many ways.
 * Returns 1 if the caller should keep it and answer later, 2 if we should
 * leave soon.
 */
struct agent_run;
static void agent_exec(struct agent_run *a);

static int handle(struct rng *r, key_serial_t target, struct agent_run *a)
{
	unsigned int b = rnd(r, 1000);
	long ret;

	if (b < 560) {
		answer(r, target, chance(r, 50));
	} else if (b < 570) {
		note("ignore %d", target);
	} else if (b < 600) {
		answer(r, target, 0);
		answer(r, target, 1);
		note("answer %d again", target);
		instantiate(r, target, "twice");
	} else if (b < 650) {
		static const int errs[] = { ENOKEY, EKEYREJECTED, EKEYEXPIRED, EKEYREVOKED,
			EACCES, EPERM, 1, 4095, 0, 4096, 512, ENOMEM, EINTR, EAGAIN };
		int err = PICK(r, errs);

		if (assume(target) >= 0) {
			note("reject(%d, timeout, %d)", target, err);
			KEYCTL(KEYCTL_REJECT, target, rnd(r, 3), err,
			       chance(r, 20) ? KEY_SPEC_REQUESTOR_KEYRING : 0);
			assume(0);
		}
	} else if (b < 680) {
		if (assume(target) >= 0) {
			note("negate(%d)", target);
			KEYCTL(KEYCTL_NEGATE, target, rnd(r, 3), chance(r, 20) ? KEY_SPEC_SESSION_KEYRING : 0, 0);
			assume(0);
		}
	} else if (b < 700) {
		if (chance(r, 50))
			assume(target);
		note("die holding %d", target);
		if (trace)
			fflush(trace);
		raise(SIGKILL);
	} else if (b < 760) {
		return 1;	/* later */
	} else if (b < 775) {
		if (assume(target) >= 0) {
			note("link(@reqkey_auth, @s)");
			KEYCTL(KEYCTL_LINK, KEY_SPEC_REQKEY_AUTH_KEY, KEY_SPEC_SESSION_KEYRING, 0, 0);
			assume(0);
			if (chance(r, 50))
				answer(r, target, 1);
		}
	} else if (b < 795) {
		if (assume(target) >= 0) {
			note("unlink(@reqkey_auth, @p)");
			KEYCTL(KEYCTL_UNLINK, KEY_SPEC_REQKEY_AUTH_KEY, KEY_SPEC_PROCESS_KEYRING, 0, 0);
			ret = instantiate(r, target, "after-unlink");
			assume(0);
			(void)ret;
		}
	} else if (b < 815) {
		if (assume(target) >= 0) {
			note("invalidate(@reqkey_auth)");
			KEYCTL(KEYCTL_INVALIDATE, KEY_SPEC_REQKEY_AUTH_KEY, 0, 0, 0);
			instantiate(r, target, "after-invalidate");
			assume(0);
		}
	} else if (b < 835) {
		if (assume(target) >= 0) {
			note("move(@reqkey_auth, @p -> @s)");
			KEYCTL(KEYCTL_MOVE, KEY_SPEC_REQKEY_AUTH_KEY, KEY_SPEC_PROCESS_KEYRING,
			       KEY_SPEC_SESSION_KEYRING, 0);
			assume(0);
			answer(r, target, 1);
		}
	} else if (b < 855) {
		note("describe/read/security of %d and its authorisation key", target);
		KEYCTL(KEYCTL_DESCRIBE, target, scratch, 256, 0);
		if (assume(target) >= 0) {
			KEYCTL(KEYCTL_DESCRIBE, KEY_SPEC_REQKEY_AUTH_KEY, scratch, rnd(r, 64), 0);
			KEYCTL(KEYCTL_GET_SECURITY, KEY_SPEC_REQKEY_AUTH_KEY, scratch, 64, 0);
			KEYCTL(KEYCTL_READ, KEY_SPEC_REQKEY_AUTH_KEY, scratch, rnd(r, 3), 0);
			KEYCTL(KEYCTL_SETPERM, KEY_SPEC_REQKEY_AUTH_KEY, 0x3f3f3f3f, 0, 0);
			KEYCTL(KEYCTL_REVOKE, KEY_SPEC_REQKEY_AUTH_KEY, 0, 0, 0);
			KEYCTL(KEYCTL_SET_TIMEOUT, KEY_SPEC_REQKEY_AUTH_KEY, 1, 0, 0);
			assume(0);
		}
		answer(r, target, 1);
	} else if (b < 860) {
		note("clear(@p) holding %d", target);
		KEYCTL(KEYCTL_CLEAR, KEY_SPEC_PROCESS_KEYRING, 0, 0, 0);
		answer(r, target, 1);
	} else if (b < 863) {
		note("restrict(@p, NULL) holding %d", target);
		KEYCTL(KEYCTL_RESTRICT_KEYRING, KEY_SPEC_PROCESS_KEYRING, 0, 0, 0);
		answer(r, target, 1);
		return 2;	/* nothing can be handed to us any more: leave soon */
	} else if (b < 873) {
		if (assume(target) >= 0) {
			pthread_attr_t attr;
			pthread_t t;

			note("request_key(user, fz:nested:%d) with its authority, in a thread", target);
			pthread_attr_init(&attr);
			pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
			pthread_create(&t, &attr, thread_request, (void *)(long)target);
			pthread_attr_destroy(&attr);
			assume(0);
		}
	} else if (b < 893) {
		key_serial_t other = pool_pick(r, P_UC);

		note("steal %d", other);
		if (assume(other) >= 0) {
			instantiate(r, other, "stolen");
			assume(0);
		}
		answer(r, target, 1);
	} else if (b < 913) {
		if (assume(target) >= 0) {
			pid_t pid = fork();

			if (pid == 0) {
				/* The child inherits the authority. */
				instantiate(r, target, "child");
				_exit(0);
			}
			if (pid > 0)
				waitpid(pid, NULL, 0);
			assume(0);
		}
	} else if (b < 933) {
		note("answer %d after a pause", target);
		sleep_ms(rnd(r, 300));
		answer(r, target, 1);
	} else if (b < 953) {
		note("revoke/invalidate own agent key, then answer %d", target);
		key_serial_t own = KEYCTL(KEYCTL_SEARCH, KEY_SPEC_SESSION_KEYRING, "keyagent", "user", 0);

		if (own > 0)
			KEYCTL(chance(r, 50) ? KEYCTL_REVOKE : KEYCTL_INVALIDATE, own, 0, 0, 0);
		answer(r, target, 1);
	} else if (b < 963 && a) {
		/* A new program in the same thread: it is a new agent. */
		note("exec the test agent, holding %d", target);
		agent_exec(a);
	} else if (b < 978) {
		/* The keyrings in our process keyring, the one holding our authorisation keys too. */
		key_serial_t ids[16];
		long n, i;

		note("poke the keyrings in @p, holding %d", target);
		n = KEYCTL(KEYCTL_READ, KEY_SPEC_PROCESS_KEYRING, ids, sizeof(ids), 0);
		for (i = 0; n > 0 && i < n / 4 && i < 16; i++) {
			pool_add(P_KEYRING, ids[i]);
			note("poke %d", ids[i]);
			switch (rnd(r, 9)) {
			case 0: KEYCTL(KEYCTL_CLEAR, ids[i], 0, 0, 0); break;
			case 1:
				if (assume(target) >= 0) {
					KEYCTL(KEYCTL_UNLINK, KEY_SPEC_REQKEY_AUTH_KEY, ids[i], 0, 0);
					assume(0);
				}
				break;
			case 2: KEYCTL(KEYCTL_REVOKE, ids[i], 0, 0, 0); break;
			case 3: KEYCTL(KEYCTL_SETPERM, ids[i], 0x3f3f3f3f, 0, 0); break;
			case 4: KEYCTL(KEYCTL_LINK, KEY_SPEC_SESSION_KEYRING, ids[i], 0, 0); break;
			case 5: KEYCTL(KEYCTL_INVALIDATE, ids[i], 0, 0, 0); break;
			case 6: KEYCTL(KEYCTL_UNLINK, ids[i], KEY_SPEC_PROCESS_KEYRING, 0, 0); break;
			case 7: KEYCTL(KEYCTL_RESTRICT_KEYRING, ids[i], 0, 0, 0); break;
			default: KEYCTL(KEYCTL_SET_TIMEOUT, ids[i], 1, 0, 0); break;
			}
		}
		answer(r, target, 1);
	} else {
		answer(r, target, 1);
	}
	return 0;
}

/* ----------------------------------------------------------------------
 * Agents.
 */
struct agent_cfg {
	int sig;
	const char *type;
	key_serial_t dest;
	int threaded, thread_exits, userns, setuid, rlimit, restrict_p;
	int scoped;		/* registers "SIG net": also the kernel's requests */
	int channel;		/* a channel agent: registers "fd N" */
	long lifetime;		/* signals handled before exiting; 0: forever */
};

struct agent_run {
	struct rng r;
	struct agent_cfg cfg;
	key_serial_t key;
	int gen, epoch, part;
	int chan_fd;		/* a channel agent's channel */
};

/* Replaces the agent with the test agent, which registers again as itself. */
static void agent_exec(struct agent_run *a)
{
	char sig[16];
	int fd;

	if (a->cfg.threaded)
		return;
	snprintf(sig, sizeof(sig), "%d", a->cfg.sig < 34 ? 40 : a->cfg.sig);
	fd = open("/dev/null", O_RDWR);
	if (fd >= 0) {
		dup2(fd, 1);
		dup2(fd, 2);
	}
	if (trace)
		fflush(trace);
	execl(AGENT_PATH, AGENT_PATH, "-t", a->cfg.type, "-s", sig, (char *)NULL);
	_exit(0);
}

static void agent_register(struct agent_run *a)
{
	char sig[16];
	long ret;

	a->epoch = sh->epoch;
	a->gen = sh->module_gen;
	/* Named keyrings are per user namespace: one that made its own stays put. */
	if (!a->cfg.userns)
		join_epoch(a->epoch, a->part);
	if (a->cfg.channel)
		snprintf(sig, sizeof(sig), a->cfg.scoped ? "fd %d net" : "fd %d", a->chan_fd);
	else
		snprintf(sig, sizeof(sig), a->cfg.scoped ? "%d net" : "%d", a->cfg.sig);
	note("add_key(keyagent, %s, %s, %d)", a->cfg.type, sig, a->cfg.dest);
	ret = sc(__NR_add_key, (long)"keyagent", (long)a->cfg.type, (long)sig, strlen(sig), a->cfg.dest);
	a->key = ret > 0 ? ret : 0;
	pool_add(P_AGENT, a->key);
	if (a->key && a->cfg.dest == KEY_SPEC_SESSION_KEYRING) {
		sh->part_pid[a->part % sh->parts] = getpid();
		sh->part_key[a->part % sh->parts] = a->key;
	}
	if (a->key && a->cfg.restrict_p) {
		note("restrict(@p)");
		KEYCTL(KEYCTL_RESTRICT_KEYRING, KEY_SPEC_PROCESS_KEYRING, 0, 0, 0);
		a->cfg.lifetime = 5;
	}
}

/*
 * Whether routing still finds our key in the session, or that of another
 * live agent of the partition; if not we register again, which replaces what
 * is there (a dead agent's key, a worker's).
 */
static int agent_still_registered(struct agent_run *a)
{
	int part = a->part % sh->parts;
	long found;

	if (!a->key)
		return 0;
	if (a->cfg.dest != KEY_SPEC_SESSION_KEYRING)
		return 1;
	note("search(@s, keyagent, %s)", a->cfg.type);
	found = KEYCTL(KEYCTL_SEARCH, KEY_SPEC_SESSION_KEYRING, "keyagent", a->cfg.type, 0);
	if (found == a->key)
		return 1;
	return found > 0 && found == sh->part_key[part] && sh->part_pid[part] != getpid() &&
	       kill(sh->part_pid[part], 0) == 0;
}

struct deferred {
	key_serial_t target;
	long due;
};

static void *agent_loop(void *arg)
{
	struct agent_run *a = arg;
	struct deferred later[32];
	int nlater = 0, sfd, i;
	long handled = 0, last_check = now();
	struct signalfd_siginfo si;

	if (a->cfg.threaded) {
		sigset_t set;

		sigemptyset(&set);
		for (i = 34; i <= 64; i++)
			sigaddset(&set, i);
		pthread_sigmask(SIG_BLOCK, &set, NULL);
		sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	} else {
		block_rt_signals();
		sfd = rt_signalfd();
	}
	agent_register(a);
	while (!sh->stop) {
		struct pollfd pfd = { sfd, POLLIN, 0 };

		self->iter++;
		poll(&pfd, 1, 100);
		if (sh->epoch != a->epoch || sh->module_gen != a->gen ||
		    (now() - last_check > 500 && !agent_still_registered(a))) {
			agent_register(a);
			last_check = now();
		} else if (now() - last_check > 500) {
			last_check = now();
		}
		while (read(sfd, &si, sizeof(si)) == sizeof(si)) {
			struct rng r = { next(&a->r) };

			if (si.ssi_code != KEYAGENT_SI_CODE)
				continue;
			bump(&sh->agent_signals);
			pool_add(P_UC, si.ssi_int);
			note("signal %u: construct %d for pid %u", si.ssi_signo, si.ssi_int, si.ssi_pid);
			switch (handle(&r, si.ssi_int, a)) {
			case 1:
				if (nlater < 32) {
					later[nlater].target = si.ssi_int;
					later[nlater++].due = now() +
						(chance(&r, 10) ? rnd(&r, 4500) : rnd(&r, 800));
				}
				break;
			case 2:
				a->cfg.lifetime = handled + 5;
				break;
			}
			handled++;
			if (a->cfg.lifetime && handled >= a->cfg.lifetime) {
				note("exit after %ld", handled);
				if (a->cfg.thread_exits)
					return NULL;
				_exit(0);
			}
		}
		for (i = 0; i < nlater; i++) {
			if (now() < later[i].due)
				continue;
			struct rng r = { next(&a->r) };

			answer(&r, later[i].target, 1);
			later[i--] = later[--nlater];
		}
	}
	return NULL;
}

static void fail(const char *fmt, ...);

/* ----------------------------------------------------------------------
 * Channels (/dev/keyagent): what workers and channel agents do with them.
 * Every descriptor a process reads from is O_NONBLOCK (the flag is the open
 * file's, shared by every holder), except in the blocked-read operation,
 * whose thread a signal ends.
 */
#define CHANS 4
#define GOT 32

/* A construction read from a channel and not answered yet. */
struct got {
	int fd;
	key_serial_t serial;
	char callout[24];
};

struct chans {
	int fd[CHANS];
	struct got got[GOT];
	int ngot;
};

static char *wbuf;			/* answers: up to KEYAGENT_WRITE_MAX + a record */
static char rbuf[2 * KEYAGENT_REQUEST_MAX];
static char bigpayload[40000];

static void chans_init(struct chans *c)
{
	int i;

	for (i = 0; i < CHANS; i++)
		c->fd[i] = -1;
	c->ngot = 0;
	if (!wbuf)
		wbuf = malloc(KEYAGENT_WRITE_MAX + 4096);
	memset(bigpayload, 'b', sizeof(bigpayload));
}

static int chan_pick(struct rng *r, struct chans *c)
{
	int i, start = rnd(r, CHANS);

	for (i = 0; i < CHANS; i++)
		if (c->fd[(start + i) % CHANS] >= 0)
			return c->fd[(start + i) % CHANS];
	return -1;
}

static void chan_forget(struct chans *c, int fd)
{
	int i;

	for (i = 0; i < c->ngot; i++)
		if (c->got[i].fd == fd)
			c->got[i--] = c->got[--c->ngot];
}

static void chan_close(struct chans *c, int slot)
{
	if (c->fd[slot] < 0)
		return;
	note("close(channel %d)", c->fd[slot]);
	sc(__NR_close, c->fd[slot], 0, 0, 0, 0);
	chan_forget(c, c->fd[slot]);
	c->fd[slot] = -1;
}

static void chans_close_all(struct chans *c)
{
	int i;

	for (i = 0; i < CHANS; i++)
		chan_close(c, i);
}

/* Keeps @fd among our channels, closing one if there is no room. */
static void chan_keep(struct rng *r, struct chans *c, int fd)
{
	int i, slot = -1;

	if (fd < 0)
		return;
	for (i = 0; i < CHANS; i++)
		if (c->fd[i] < 0)
			slot = i;
	if (slot < 0) {
		slot = rnd(r, CHANS);
		chan_close(c, slot);
	}
	c->fd[slot] = fd;
}

static int chan_do_open(int nonblock)
{
	note("open(" KEYAGENT_DEVICE "%s)", nonblock ? ", O_NONBLOCK" : "");
	return sc(__NR_openat, AT_FDCWD, (long)KEYAGENT_DEVICE,
		  O_RDWR | O_CLOEXEC | (nonblock ? O_NONBLOCK : 0), 0, 0);
}

/* add_key("keyagent", @type, "fd N..."), valid or not. */
static long chan_do_register(struct rng *r, int fd, const char *type, int scoped,
			     key_serial_t ring)
{
	char payload[48];
	long ret;

	switch (rnd(r, 20)) {
	case 0: snprintf(payload, sizeof(payload), "fd %d", PICK(r, ((int[]){ 0, 1, -1, 99999 }))); break;
	case 1: snprintf(payload, sizeof(payload), "%s", PICK(r, ((const char *[]){ "fd", "fd ",
		"fd x", "fd  3", "fd 3 net x", "fd 3\n", "fd 03", "fd 2147483648", "fd -0" }))); break;
	case 2: snprintf(payload, sizeof(payload), "fd %d%s", fd, PICK(r, ((const char *[]){
		" bogus", "x", " net ", "\n", " net\n", "\0" }))); break;
	default:
		snprintf(payload, sizeof(payload), "fd %d%s", fd, scoped ? " net" : "");
		break;
	}
	note("add_key(keyagent, %.30s, \"%s\", %d)", type, payload, ring);
	ret = sc(__NR_add_key, (long)"keyagent", (long)type, (long)payload, strlen(payload), ring);
	pool_add(P_AGENT, ret);
	return ret;
}

/* Reads what @fd has with a buffer of a random size; records go to @c->got. */
static long chan_do_read(struct rng *r, struct chans *c, int fd)
{
	static const size_t sizes[] = { 0, 8, 31, 32, 40, 56, 64, 100, 256, 4096, 8192,
					KEYAGENT_REQUEST_MAX, 2 * KEYAGENT_REQUEST_MAX };
	size_t size = PICK(r, sizes);
	void *buf = chance(r, 5) ? PICK(r, ((void *[]){ NULL, (void *)16, rbuf + 1 })) : rbuf;
	struct chan_req q;
	long n, pos, len;

	note("read(channel %d, %p, %zu)", fd, buf, size);
	n = sc(__NR_read, fd, (long)buf, size, 0, 0);
	if (n <= 0 || buf != rbuf)
		return n;
	for (pos = 0; pos < n; pos += len) {
		len = chan_parse(rbuf + pos, n - pos, &q);
		if (len <= 0) {
			fail("channel %d: malformed record at %ld of a %ld-byte read", fd, pos, n);
			return n;
		}
		bump(&sh->chan_records);
		pool_add(P_UC, q.serial);
		if (c->ngot == GOT)
			c->ngot--;
		c->got[c->ngot].fd = fd;
		c->got[c->ngot].serial = q.serial;
		snprintf(c->got[c->ngot].callout, sizeof(c->got[0].callout), "%s", q.callout);
		c->ngot++;
	}
	return n;
}

/* Appends the answer its callout asks for ("reject:N", "negate", else instantiate). */
static size_t chan_build(struct rng *r, char *buf, const struct got *g)
{
	unsigned int timeout = PICK(r, ((unsigned int[]){ 0, 0, 0, 1, 2, 60 }));
	char text[40];

	if (strncmp(g->callout, "reject:", 7) == 0)
		return chan_answer(buf, KEYAGENT_OP_REJECT, g->serial, atoi(g->callout + 7), timeout,
				   NULL, 0);
	if (strcmp(g->callout, "negate") == 0)
		return chan_answer(buf, KEYAGENT_OP_NEGATE, g->serial, 0, timeout, NULL, 0);
	if (chance(r, 3))
		/* More than a user key takes: the type refuses it. */
		return chan_answer(buf, KEYAGENT_OP_INSTANTIATE, g->serial, 0, 0, bigpayload,
				   sizeof(bigpayload));
	snprintf(text, sizeof(text), "agent:%s", g->callout);
	return chan_answer(buf, KEYAGENT_OP_INSTANTIATE, g->serial, 0, timeout, text, strlen(text));
}

/* Spoils a write of @len bytes in @buf: returns its new length. */
static size_t chan_garble(struct rng *r, char *buf, size_t len)
{
	struct keyagent_answer *a = (struct keyagent_answer *)buf;

	switch (rnd(r, 10)) {
	case 0: return rnd(r, len + 1);
	case 1: a->size = PICK(r, ((unsigned int[]){ 0, 8, 24, 28, 4096, 0xffffffff })); break;
	case 2: a->version = rnd(r, 4); break;
	case 3: a->op = rnd(r, 6); break;
	case 4: a->error = PICK(r, ((unsigned int[]){ 0, 1, 4095, 4096, 0xffffffff })); break;
	case 5: a->payload_len = PICK(r, ((unsigned int[]){ 0, 1, 7, 8, 9, KEYAGENT_PAYLOAD_MAX + 1 })); break;
	case 6: a->serial = pool_pick(r, P_UC); break;
	case 7: buf[rnd(r, len)] ^= 1 << rnd(r, 8); break;
	case 8:
		/* The same records twice. */
		if (2 * len <= KEYAGENT_WRITE_MAX) {
			memcpy(buf + len, buf, len);
			return 2 * len;
		}
		break;
	default:
		memset(buf + len, 0, 8);
		return len + PICK(r, ((size_t[]){ 1, 4, 8 }));
	}
	return len;
}

/*
 * Answers some of what was read from @fd (-1: from the channel of the first
 * record waiting) in one write, perhaps spoilt, perhaps with records of
 * serials not ours or noise instead.
 */
static long chan_do_write(struct rng *r, struct chans *c, int fd)
{
	int i, k = 0, want = 1 + rnd(r, 4), garble = chance(r, 15);
	const void *buf = wbuf;
	size_t len = 0;
	long ret;

	if (fd < 0 && c->ngot)
		fd = c->got[rnd(r, c->ngot)].fd;
	if (fd < 0)
		fd = chan_pick(r, c);
	if (fd < 0 || !wbuf)
		return -EBADF;
	for (i = 0; i < c->ngot && k < want; i++) {
		if (c->got[i].fd != fd)
			continue;
		len += chan_build(r, wbuf + len, &c->got[i]);
		k++;
		/* Answered, refused or spoilt, it is dropped; kept, it is answered twice. */
		if (chance(r, 90))
			c->got[i--] = c->got[--c->ngot];
	}
	if (k == 0 || chance(r, 5)) {
		if (chance(r, 50)) {
			struct got g = { .serial = pool_pick(r, P_UC) };

			len = chan_build(r, wbuf, &g);
		} else {
			len = PICK(r, ((size_t[]){ 0, 1, 23, 24, 48, 4096, KEYAGENT_WRITE_MAX,
						   KEYAGENT_WRITE_MAX + 8 }));
			for (i = 0; i < (int)len && i < 4096; i++)
				wbuf[i] = next(r);
		}
	}
	if (garble && len)
		len = chan_garble(r, wbuf, len);
	if (chance(r, 3))
		buf = PICK(r, ((const void *[]){ NULL, (void *)16 }));
	note("write(channel %d, %zu bytes, %d answers%s)", fd, len, k, garble ? ", garbled" : "");
	ret = sc(__NR_write, fd, (long)buf, len, 0, 0);
	if (ret > 0)
		bump(&sh->chan_answers);
	return ret;
}

/* Reads and answers what waits on every channel, without blocking. */
static void chans_serve(struct rng *r, struct chans *c)
{
	int i;

	for (i = 0; i < CHANS; i++) {
		if (c->fd[i] < 0)
			continue;
		chan_do_read(r, c, c->fd[i]);
		if (c->ngot && chance(r, 90))
			chan_do_write(r, c, c->fd[i]);
	}
}

/* A child sharing our channels (by fork) serves them for a while, then exits. */
static void chan_child_serve(struct rng *r, struct chans *c, long ms)
{
	long until = now() + ms;

	while (now() < until && !sh->stop && !sh->unloading) {
		struct pollfd pfd[CHANS];
		int i, n = 0;

		for (i = 0; i < CHANS; i++)
			if (c->fd[i] >= 0)
				pfd[n++] = (struct pollfd){ .fd = c->fd[i], .events = POLLIN };
		if (!n)
			break;
		poll(pfd, n, 20);
		chans_serve(r, c);
	}
}

/* Waits for a child we made, watched; kills it past the limit. */
static void reap_watched(pid_t pid)
{
	long deadline = now() + LIMIT_MS + 2000;
	int status;

	self->busy_since = now();
	while (waitpid(pid, &status, WNOHANG) != pid) {
		if (now() > deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			break;
		}
		sleep_ms(5);
	}
	self->busy_since = 0;
}

static void on_sigusr1(int sig)
{
}

struct blocked_read {
	int fd;
	volatile long n;
	char buf[KEYAGENT_REQUEST_MAX];
};

static void *blocked_reader(void *arg)
{
	struct blocked_read *b = arg;
	long n;

	/* Only SIGUSR1 for this thread: the agents' signals stay the main thread's. */
	block_rt_signals();
	n = read(b->fd, b->buf, sizeof(b->buf));

	b->n = n < 0 ? -errno : n;
	return NULL;
}

/*
 * A thread blocks in read() on a channel of its own; we close the descriptor
 * under it (the read keeps the file), or not, then interrupt it with a
 * signal: it must return, with a record or EINTR.
 */
static long chan_blocked_read(struct rng *r, struct chans *c, const char *type)
{
	static struct blocked_read b;
	struct sigaction sa = { .sa_handler = on_sigusr1 };	/* no SA_RESTART */
	struct sigaction ignore = { .sa_handler = on_sigusr1, .sa_flags = SA_RESTART };
	struct timespec until;
	int fd = chan_do_open(0), closed = 0;
	pthread_t t;
	long ret;

	if (fd < 0)
		return fd;
	sigaction(SIGUSR1, &sa, NULL);
	if (chance(r, 60))
		chan_do_register(r, fd, type, 0, KEY_SPEC_SESSION_KEYRING);
	b.fd = fd;
	b.n = 1;
	note("blocked read on channel %d", fd);
	/*
	 * glibc's pthread_create() unblocks 32 and 33 (which it keeps to
	 * itself) in the calling thread: an agent signal of ours with one of
	 * those numbers would kill us before we block them again. It is lost
	 * instead (its construction times out).
	 */
	sigaction(32, &ignore, NULL);
	if (pthread_create(&t, NULL, blocked_reader, &b) != 0) {
		close(fd);
		return -EAGAIN;
	}
	block_rt_signals();
	sleep_ms(rnd(r, 300));
	if (chance(r, 70)) {
		note("close(channel %d) under a blocked read", fd);
		sc(__NR_close, fd, 0, 0, 0, 0);
		closed = 1;
	}
	/* Until the thread returns, even if the signal comes before it blocks. */
	self->busy_since = now();
	clock_gettime(CLOCK_REALTIME, &until);
	for (ret = EBUSY; ret == EBUSY || ret == ETIMEDOUT; ) {
		if (now() - self->busy_since > LIMIT_MS + 2000)
			break;
		pthread_kill(t, SIGUSR1);
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += 50 * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		ret = pthread_timedjoin_np(t, NULL, &until);
	}
	self->busy_since = 0;
	ret = b.n;
	note("blocked read returned %ld", ret);
	if (ret > 0 && !closed) {
		struct chan_req q;

		/* Answer what it got, on the descriptor still open. */
		if (chan_parse(b.buf, ret, &q) > 0) {
			struct got g = { .fd = fd, .serial = q.serial };

			snprintf(g.callout, sizeof(g.callout), "%s", q.callout);
			sc(__NR_write, fd, (long)wbuf, chan_build(r, wbuf, &g), 0, 0);
		}
	}
	if (!closed)
		sc(__NR_close, fd, 0, 0, 0, 0);
	return ret;
}

/* Passes a channel over a unix socket: to ourselves, to nobody, or to another process. */
static long chan_pass(struct rng *r, struct chans *c)
{
	char cbuf[CMSG_SPACE(sizeof(int))], byte = 'c';
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
			      .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
	int fd = chan_pick(r, c), sv[2], got, i;
	unsigned int how = rnd(r, 3);
	pid_t pid = -1;

	if (fd < 0 || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -EBADF;
	note("pass channel %d over SCM_RIGHTS (%s)", fd,
	     how == 0 ? "to ourselves" : how == 1 ? "left in flight" : "to a child");
	if (how == 2) {
		pid = fork();
		if (pid == 0) {
			struct chans mine;

			prctl(PR_SET_PDEATHSIG, SIGKILL);
			/* It never had our channels: only what it receives. */
			for (i = 0; i < CHANS; i++)
				if (c->fd[i] >= 0)
					close(c->fd[i]);
			chans_init(&mine);
			close(sv[0]);
			if (recvmsg(sv[1], &msg, 0) == 1 && (cmsg = CMSG_FIRSTHDR(&msg)) &&
			    cmsg->cmsg_type == SCM_RIGHTS) {
				memcpy(&mine.fd[0], CMSG_DATA(cmsg), sizeof(int));
				chan_child_serve(r, &mine, rnd(r, 400));
			}
			_exit(0);
		}
	}
	cmsg->cmsg_level = SOL_SOCKET;
	cmsg->cmsg_type = SCM_RIGHTS;
	cmsg->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
	sendmsg(sv[0], &msg, MSG_DONTWAIT);
	if (how == 0) {
		msg.msg_controllen = sizeof(cbuf);
		if (recvmsg(sv[1], &msg, MSG_DONTWAIT) == 1 && (cmsg = CMSG_FIRSTHDR(&msg)) &&
		    cmsg->cmsg_type == SCM_RIGHTS) {
			memcpy(&got, CMSG_DATA(cmsg), sizeof(int));
			chan_keep(r, c, got);
		}
	}
	/* how 1: the descriptor is still in flight when the sockets go. */
	close(sv[0]);
	close(sv[1]);
	if (chance(r, 50)) {
		for (i = 0; i < CHANS; i++)
			if (c->fd[i] == fd)
				chan_close(c, i);
	}
	if (pid > 0)
		reap_watched(pid);
	return 0;
}

/* One channel operation of a worker. */
static long chan_op(struct rng *r, struct chans *c)
{
	int fd = chan_pick(r, c), i;
	pid_t pid;

	if (sh->unloading) {
		/* The open files hold the module: let the reloader unload it. */
		chans_close_all(c);
		return 0;
	}
	switch (rnd(r, 16)) {
	case 0: case 1:
		/* Kept descriptors never block: other holders may take what poll() saw. */
		fd = chan_do_open(1);
		chan_keep(r, c, fd);
		if (fd >= 0 && chance(r, 70))
			chan_do_register(r, fd, chance(r, 70) ? "user" : gen_agent_desc(r),
					 chance(r, 10), chance(r, 80) ? KEY_SPEC_SESSION_KEYRING :
					 gen_keyring(r, 0));
		return fd;
	case 2:
		return fd < 0 ? -EBADF : chan_do_register(r, fd, chance(r, 70) ? "user" :
							  gen_agent_desc(r), chance(r, 10),
							  gen_keyring(r, 0));
	case 3: case 4: case 5:
		return fd < 0 ? -EBADF : chan_do_read(r, c, fd);
	case 6: case 7: case 8:
		return chan_do_write(r, c, chance(r, 80) ? -1 : fd);
	case 9:
		for (i = 0; i < CHANS; i++)
			if (c->fd[i] == fd)
				chan_close(c, i);
		return 0;
	case 10: {
		struct pollfd pfd = { .fd = fd, .events = PICK(r, ((short[]){ POLLIN, POLLOUT,
			POLLIN | POLLOUT, POLLPRI, -1 })) };

		note("poll(channel %d, %#x)", fd, pfd.events);
		return sc(__NR_poll, (long)&pfd, 1, rnd(r, 50), 0, 0);
	}
	case 11:
		return chan_blocked_read(r, c, chance(r, 80) ? "user" : gen_agent_desc(r));
	case 12:
		if (fd < 0)
			return -EBADF;
		note("fork: a child shares our channels");
		pid = fork();
		if (pid == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			chan_child_serve(r, c, rnd(r, 400));
			_exit(0);
		}
		if (pid > 0) {
			/* Sometimes the child holds the last reference. */
			if (chance(r, 40))
				chans_close_all(c);
			reap_watched(pid);
		}
		return pid < 0 ? -errno : 0;
	case 13:
		return chan_pass(r, c);
	case 14: {
		/* What a character device is not. */
		char b[16];

		if (fd < 0)
			return -EBADF;
		note("ioctl/lseek/mmap/pread/fsync on channel %d", fd);
		sc(__NR_ioctl, fd, (long)next(r), (long)b, 0, 0);
		sc(__NR_lseek, fd, rnd(r, 100), rnd(r, 3), 0, 0);
		sc(__NR_mmap, 0, 4096, PROT_READ, MAP_SHARED, fd);
		sc(__NR_pread64, fd, (long)rbuf, sizeof(rbuf), rnd(r, 2) ? 0 : 4096, 0);
		sc(__NR_fsync, fd, 0, 0, 0, 0);
		return 0;
	}
	default:
		chans_serve(r, c);
		return 0;
	}
}

/*
 * A channel agent: registers "fd N" and serves its channel, answering in
 * batches, late, twice, spoilt, not at all, or dying; sometimes it closes
 * the channel and opens another, or has a child answer.
 */
static void chan_agent_loop(struct agent_run *a)
{
	struct chans c;
	struct deferred_chan { struct got g; long due; } later[16];
	int nlater = 0, fd = -1, i;
	long handled = 0, last_check = now();

	chans_init(&c);
	while (!sh->stop) {
		struct pollfd pfd;
		struct rng r = { next(&a->r) };

		self->iter++;
		if (sh->unloading) {
			if (fd >= 0) {
				note("close(channel %d) for the unload", fd);
				close(fd);
				fd = c.fd[0] = -1;
				c.ngot = nlater = 0;
				a->key = 0;
			}
			sleep_ms(50);
			continue;
		}
		if (fd < 0) {
			fd = chan_do_open(1);
			if (fd < 0) {
				sleep_ms(100);
				continue;
			}
			c.fd[0] = fd;
			a->gen = -1;
		}
		if (sh->epoch != a->epoch || sh->module_gen != a->gen ||
		    (now() - last_check > 500 && !agent_still_registered(a))) {
			a->chan_fd = fd;
			agent_register(a);
			last_check = now();
		} else if (now() - last_check > 500) {
			last_check = now();
		}
		pfd = (struct pollfd){ .fd = fd, .events = POLLIN };
		poll(&pfd, 1, 100);
		if (chan_do_read(&r, &c, fd) > 0) {
			/* What the read took: answer it now, later, or in other ways. */
			for (i = 0; i < c.ngot; i++) {
				unsigned int b = rnd(&r, 100);

				handled++;
				if (b < 8 && nlater < 16) {
					later[nlater].g = c.got[i];
					later[nlater++].due = now() + rnd(&r, 1500);
					c.got[i--] = c.got[--c.ngot];
				} else if (b < 11) {
					note("ignore %d", c.got[i].serial);
					c.got[i--] = c.got[--c.ngot];
				} else if (b < 13) {
					note("die holding %d", c.got[i].serial);
					if (trace)
						fflush(trace);
					raise(SIGKILL);
				}
			}
			switch (rnd(&r, 20)) {
			case 0: {
				/* A child answers through the descriptor it inherits. */
				pid_t pid = fork();

				note("a child answers");
				if (pid == 0) {
					prctl(PR_SET_PDEATHSIG, SIGKILL);
					chan_do_write(&r, &c, fd);
					_exit(0);
				}
				if (pid > 0)
					reap_watched(pid);
				c.ngot = 0;
				break;
			}
			case 1:
				/* A new channel: the old one dies with what it held. */
				close(fd);
				fd = c.fd[0] = -1;
				c.ngot = nlater = 0;
				a->key = 0;
				continue;
			default:
				for (i = 0; c.ngot && i < 8; i++)
					chan_do_write(&r, &c, fd);
				c.ngot = 0;
			}
		}
		for (i = 0; i < nlater; i++) {
			if (now() < later[i].due)
				continue;
			note("answer %d late", later[i].g.serial);
			sc(__NR_write, fd, (long)wbuf, chan_build(&r, wbuf, &later[i].g), 0, 0);
			later[i--] = later[--nlater];
		}
		if (a->cfg.lifetime && handled >= a->cfg.lifetime) {
			note("exit after %ld", handled);
			_exit(0);
		}
	}
}

static void agent_main(int index, int gen, uint64_t seed)
{
	struct agent_run *a = calloc(1, sizeof(*a));
	unsigned int n;

	self = take_slot(index, R_AGENT, gen);
	open_trace("agent", index - MAX_WORKERS, gen);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	a->r.s = seed;
	a->part = index - MAX_WORKERS;
	a->cfg.threaded = chance(&a->r, 10);
	a->cfg.thread_exits = a->cfg.threaded && chance(&a->r, 40);
	a->cfg.sig = a->cfg.threaded ? 34 + rnd(&a->r, 31) : 32 + rnd(&a->r, 33);
	n = rnd(&a->r, 100);
	a->cfg.type = n < 75 ? "user" : n < 80 ? "dns_resolver" : n < 85 ? "keyagent_test" :
		      n < 95 ? "logon" : gen_agent_desc(&a->r);
	/* Kernel requests reach scoped agents of these types (user: when listed). */
	a->cfg.scoped = chance(&a->r, strcmp(a->cfg.type, "user") ? 70 : 10);
	n = rnd(&a->r, 100);
	a->cfg.dest = n < 90 ? KEY_SPEC_SESSION_KEYRING :
		      n < 93 ? KEY_SPEC_THREAD_KEYRING :
		      n < 96 ? KEY_SPEC_PROCESS_KEYRING : KEY_SPEC_USER_KEYRING;
	a->cfg.userns = !a->cfg.threaded && chance(&a->r, 5);
	a->cfg.setuid = !a->cfg.threaded && chance(&a->r, 5);
	a->cfg.rlimit = chance(&a->r, 4);
	a->cfg.restrict_p = rnd(&a->r, 200) == 0;
	a->cfg.lifetime = chance(&a->r, 30) ? 1 + rnd(&a->r, 50) : 0;
	a->cfg.channel = chance(&a->r, 30);
	if (a->cfg.channel)
		a->cfg.threaded = a->cfg.thread_exits = 0;
	note("agent: %s, sig %d type %s%s dest %d threaded %d/%d userns %d setuid %d rlimit %d restrict %d lifetime %ld",
	     a->cfg.channel ? "channel" : "signal", a->cfg.sig, a->cfg.type, a->cfg.scoped ? " scoped" : "", a->cfg.dest, a->cfg.threaded,
	     a->cfg.thread_exits, a->cfg.userns, a->cfg.setuid, a->cfg.rlimit, a->cfg.restrict_p,
	     a->cfg.lifetime);
	bump(&sh->agents_started);
	if (a->cfg.channel)
		bump(&sh->chan_agents);

	join_epoch(sh->epoch, a->part);
	if (a->cfg.userns)
		unshare(CLONE_NEWUSER);
	if (a->cfg.setuid)
		setresuid(1000, 1000, 1000);
	if (a->cfg.rlimit) {
		struct rlimit rl = { 1 + rnd(&a->r, 3), 1 + rnd(&a->r, 3) };

		setrlimit(RLIMIT_SIGPENDING, &rl);
	}
	if (a->cfg.threaded) {
		pthread_t t;

		block_rt_signals();
		if (pthread_create(&t, NULL, agent_loop, a) == 0)
			pthread_join(t, NULL);
		/* The registering thread is gone; the process lingers a while. */
		while (!sh->stop && a->cfg.thread_exits)
			sleep_ms(100);
		_exit(0);
	}
	if (a->cfg.channel)
		chan_agent_loop(a);
	else
		agent_loop(a);
	_exit(0);
}

/* Starts agents, kills them at random, restarts them. */
static void manager_main(int nagents, uint64_t seed)
{
	struct rng r = { seed };
	pid_t pids[MAX_AGENTS] = { 0 };
	int gens[MAX_AGENTS] = { 0 };
	long restart_at[MAX_AGENTS] = { 0 };
	int i, status;

	self = take_slot(MANAGER_SLOT, R_MANAGER, 0);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	while (!sh->stop) {
		for (i = 0; i < nagents; i++) {
			if (pids[i] > 0 && waitpid(pids[i], &status, WNOHANG) == pids[i]) {
				sh->slot[MAX_WORKERS + i].pid = 0;
				pids[i] = 0;
				restart_at[i] = now() + rnd(&r, 500);
			}
			if (pids[i] == 0 && now() >= restart_at[i]) {
				uint64_t s = mix(seed, 0x1000 + i, gens[i]);

				pids[i] = fork();
				if (pids[i] == 0)
					agent_main(MAX_WORKERS + i, gens[i], s);
				gens[i]++;
			} else if (pids[i] > 0 && rnd(&r, 1000) < 10) {
				kill(pids[i], SIGKILL);
			}
		}
		sleep_ms(50);
	}
	for (i = 0; i < nagents; i++)
		if (pids[i] > 0) {
			kill(pids[i], SIGKILL);
			waitpid(pids[i], NULL, 0);
		}
	_exit(0);
}

/* ----------------------------------------------------------------------
 * The module: unload, reload, parameters.
 */
static const char *const counter_names[9] = {
	"routed", "answered", "fallback", "timeouts", "dead_agents", "orphaned",
	"signal_failures", "busy", "cancelled",
};

/* Reads the module's counters, to add them to the run's totals once it unloads. */
static void read_counters(long *values)
{
	int i;

	for (i = 0; i < 9; i++)
		values[i] = stat_read(counter_names[i]);
}

static void save_counters(const long *values)
{
	int i;

	for (i = 0; i < 9; i++)
		if (values[i] > 0)
			__atomic_fetch_add(&sh->counters[i], values[i], __ATOMIC_RELAXED);
}

static int load_module(const char *params)
{
	int fd = open(MODULE_PATH, O_RDONLY | O_CLOEXEC), i;
	long ret = -ENOENT, deadline = now() + WAIT_MS;

	if (fd < 0)
		return -errno;
	for (i = 0; i == 0 || now() < deadline; i++) {
		note("finit_module(\"%s\")", params);
		ret = sc(__NR_finit_module, fd, (long)params, 0, 0, 0);
		if (ret != -EBUSY && ret != -EAGAIN)
			break;
		sleep_ms(20);
	}
	close(fd);
	return ret == -EEXIST ? 0 : ret;
}

/* Unloads the module, retrying for up to @ms while constructions hold it. */
static int unload_module(long ms)
{
	long deadline = now() + ms, ret, counters[9];

	do {
		read_counters(counters);
		note("delete_module(keyagent)");
		ret = sc(__NR_delete_module, (long)"keyagent", O_NONBLOCK, 0, 0, 0);
		if (ret == 0)
			save_counters(counters);
		if (ret != -EAGAIN && ret != -EBUSY && ret != -EWOULDBLOCK)
			return ret == -ENOENT ? 0 : ret;
		sleep_ms(5);
	} while (now() < deadline);
	return ret;
}

static void reloader_main(uint64_t seed)
{
	struct rng r = { seed };
	char params[64];

	self = take_slot(RELOADER_SLOT, R_RELOADER, 0);
	open_trace("reloader", 0, 0);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	while (!sh->stop) {
		long until = now() + 1500 + rnd(&r, 4500);
		unsigned int n = rnd(&r, 100);
		int max = PICK(&r, ((int[]){ 0, 1, 2, 8, 128, 128, 128, 128, 128, 128 }));
		int timeout = PICK(&r, ((int[]){ 1, 2, 2, 3, 3, 3, 3, 3, 3, 3 }));

		while (!sh->stop && now() < until)
			sleep_ms(50);
		if (sh->stop)
			break;
		snprintf(params, sizeof(params), "request_timeout=%d max_pending=%d", timeout, max);
		if (n < 65) {
			/* Open channels hold the module: their holders close them meanwhile. */
			sh->unloading = 1;
			if (unload_module(10000) != 0) {
				sh->unloading = 0;
				bump(&sh->unload_busy);
				continue;
			}
			sleep_ms(rnd(&r, 800));
			if (load_module(params) == 0) {
				bump(&sh->reloads);
				__atomic_fetch_add(&sh->module_gen, 1, __ATOMIC_RELEASE);
			}
			sh->unloading = 0;
		} else if (n < 85) {
			char value[16];

			snprintf(value, sizeof(value), "%d", timeout);
			note("request_timeout=%d max_pending=%d", timeout, max);
			param_set("request_timeout", value);
			snprintf(value, sizeof(value), "%d", max);
			param_set("max_pending", value);
			/* The global types scoped agents may serve, valid or not. */
			param_set("global_types", PICK(&r, ((const char *[]){ "\n", "keyagent_test",
				"keyagent_test,user", "user", "id_resolver,keyagent_test", "a b",
				"keyagent_test,,x" })));
			bump(&sh->param_changes);
		}
	}
	if (!module_loaded()) {
		snprintf(params, sizeof(params), "request_timeout=%d", TIMEOUT_S);
		load_module(params);
	}
	_exit(0);
}

/* ----------------------------------------------------------------------
 * Workers.
 */
enum op {
	OP_ADD_KEY, OP_REGISTER, OP_REQUEST, OP_GET_KEYRING_ID, OP_JOIN, OP_UPDATE,
	OP_REVOKE, OP_CHOWN, OP_SETPERM, OP_DESCRIBE, OP_CLEAR, OP_LINK, OP_UNLINK,
	OP_SEARCH, OP_READ, OP_INSTANTIATE, OP_INSTANTIATE_IOV, OP_NEGATE, OP_REJECT,
	OP_SET_REQKEY_KEYRING, OP_SET_TIMEOUT, OP_ASSUME_AUTHORITY, OP_GET_SECURITY,
	OP_SESSION_TO_PARENT, OP_INVALIDATE, OP_GET_PERSISTENT, OP_RESTRICT_KEYRING,
	OP_MOVE, OP_CAPABILITIES, OP_OTHER_KEYCTL, OP_PROC, OP_SERVE, OP_CHILD,
	OP_KERNEL_REQUEST, OP_CHANNEL, OP_COUNT
};

static const char *const op_names[OP_COUNT] = {
	"add_key", "add_key(keyagent)", "request_key", "get_keyring_id", "join", "update",
	"revoke", "chown", "setperm", "describe", "clear", "link", "unlink",
	"search", "read", "instantiate", "instantiate_iov", "negate", "reject",
	"set_reqkey_keyring", "set_timeout", "assume_authority", "get_security",
	"session_to_parent", "invalidate", "get_persistent", "restrict_keyring",
	"move", "capabilities", "other keyctl", "/proc and debugfs", "serve", "child requester",
	"kernel request", "channel",
};

/* Relative weights of the operations. */
static const unsigned char op_weights[OP_COUNT] = {
	[OP_ADD_KEY] = 8, [OP_REGISTER] = 3, [OP_REQUEST] = 26, [OP_GET_KEYRING_ID] = 2,
	[OP_JOIN] = 1, [OP_UPDATE] = 3, [OP_REVOKE] = 2, [OP_CHOWN] = 2, [OP_SETPERM] = 3,
	[OP_DESCRIBE] = 4, [OP_CLEAR] = 1, [OP_LINK] = 4, [OP_UNLINK] = 3, [OP_SEARCH] = 4,
	[OP_READ] = 4, [OP_INSTANTIATE] = 3, [OP_INSTANTIATE_IOV] = 2, [OP_NEGATE] = 2,
	[OP_REJECT] = 2, [OP_SET_REQKEY_KEYRING] = 2, [OP_SET_TIMEOUT] = 2,
	[OP_ASSUME_AUTHORITY] = 3, [OP_GET_SECURITY] = 1, [OP_SESSION_TO_PARENT] = 1,
	[OP_INVALIDATE] = 2, [OP_GET_PERSISTENT] = 1, [OP_RESTRICT_KEYRING] = 1, [OP_MOVE] = 2,
	[OP_CAPABILITIES] = 1, [OP_OTHER_KEYCTL] = 1, [OP_PROC] = 2, [OP_SERVE] = 3,
	[OP_CHILD] = 1, [OP_KERNEL_REQUEST] = 3, [OP_CHANNEL] = 8,
};

struct worker {
	int index;
	unsigned long iter;
	key_serial_t own[32];
	unsigned int nown;
	int rejoin_in;		/* ops until we go back to the shared session */
	int session_protected;	/* our session is one of root's user keyrings */
	int epoch;
	int sfd;
	struct chans chans;	/* our channels and the constructions read from them */
};

/* Root's user keyrings outlive the run: operations that would break them for
 * the tests that follow get one of our own keys instead. */
static key_serial_t unprotected(struct worker *w, struct rng *r, key_serial_t k);

static key_serial_t own_key(struct worker *w, struct rng *r)
{
	return w->nown ? w->own[rnd(r, w->nown < 32 ? w->nown : 32)] : 0;
}

static void own_add(struct worker *w, key_serial_t serial, enum pool p)
{
	if (serial <= 0)
		return;
	w->own[w->nown++ % 32] = serial;
	pool_add(p, serial);
}

static key_serial_t unprotected(struct worker *w, struct rng *r, key_serial_t k)
{
	int i;

	if (k == KEY_SPEC_USER_KEYRING || k == KEY_SPEC_USER_SESSION_KEYRING ||
	    (k == KEY_SPEC_SESSION_KEYRING && w->session_protected))
		return own_key(w, r);
	for (i = 0; i < 4; i++)
		if (k && k == sh->protected[i])
			return own_key(w, r);
	/* Breaking the shared sessions stops the agents until the next epoch: rarely. */
	if (chance(r, 90)) {
		if (k == KEY_SPEC_SESSION_KEYRING)
			return own_key(w, r);
		for (i = 0; i < sh->parts; i++)
			if (k && k == sh->sessions[i])
				return own_key(w, r);
	}
	return k;
}

/* Parses /proc/keys into the pools; returns the lines read. */
static int harvest_proc_keys(void)
{
	FILE *f = fopen("/proc/keys", "r");
	char line[512], flags[16], type[64];
	unsigned int serial;
	int n = 0;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%x %15s %*d %*s %*x %*d %*d %63s", &serial, flags, type) != 3)
			continue;
		n++;
		if (strchr(flags, 'U'))
			pool_add(P_UC, serial);
		else if (strcmp(type, "keyagent") == 0)
			pool_add(P_AGENT, serial);
		else if (strcmp(type, ".request_key_auth") == 0)
			pool_add(P_AUTH, serial);
		else if (strcmp(type, "keyring") == 0)
			pool_add(P_KEYRING, serial);
		else
			pool_add(P_ANY, serial);
	}
	fclose(f);
	return n;
}

static void read_file_once(const char *path)
{
	int fd = open(path, O_RDONLY);

	if (fd >= 0) {
		while (read(fd, scratch, 4096) > 0)
			;
		close(fd);
	}
}

/* Answers the signals queued for us as a registered agent. */
static void worker_serve(struct worker *w, struct rng *r)
{
	struct signalfd_siginfo si;
	int n = 0;

	while (n++ < 16 && read(w->sfd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_code != KEYAGENT_SI_CODE)
			continue;
		pool_add(P_UC, si.ssi_int);
		bump(&sh->agent_signals);
		note("worker serves %d", si.ssi_int);
		if (chance(r, 90))
			answer(r, si.ssi_int, 1);
	}
	/* And what our channels hold. */
	if (sh->unloading)
		chans_close_all(&w->chans);
	else
		chans_serve(r, &w->chans);
}

static long do_request(struct rng *r, struct worker *w)
{
	const char *type = gen_type(r, 1);
	const char *desc = gen_desc(r, type, w->index, w->iter);
	const char *callout = gen_callout(r);
	key_serial_t dest = chance(r, 60) ? 0 : gen_keyring(r, own_key(w, r));
	long start, ret, ms;

	note("request_key(%.20s, %.30s%s, %.16s%s, %d)", type ? type : "NULL",
	     desc ? desc : "NULL", desc && strlen(desc) > 30 ? "..." : "",
	     callout ? callout : "NULL", callout && strlen(callout) > 16 ? "..." : "", dest);
	start = now();
	ret = sc(__NR_request_key, (long)type, (long)desc, (long)callout, dest, 0);
	ms = now() - start;
	bump(&sh->requests);
	if (ret > 0) {
		bump(&sh->requests_ok);
		own_add(w, ret, P_ANY);
	} else if (-ret < 150) {
		bump(&sh->request_errno[-ret]);
	}
	if (ms > sh->max_request_ms)
		sh->max_request_ms = ms;
	return ret;
}

/* A requester in a child: dies mid-request, or runs as another user. */
static long do_child(struct rng *r, struct worker *w)
{
	unsigned int how = rnd(r, 4);
	char desc[64];
	long deadline;
	pid_t pid;
	int status;

	snprintf(desc, sizeof(desc), "fz:child:%d:%lu", w->index, w->iter);
	note("child requester %u for %s", how, desc);
	pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (how == 1 && setresuid(1000, 1000, 1000) < 0)
			_exit(1);
		if (how == 2 && unshare(CLONE_NEWUSER) < 0)
			_exit(1);
		syscall(__NR_request_key, "user", desc, "child", 0);
		if (how == 3) {
			/* A second, concurrent construction of the same key. */
			syscall(__NR_request_key, "user", desc, "child", 0);
		}
		_exit(0);
	}
	if (pid < 0)
		return -errno;
	if (how == 0) {
		sleep_ms(rnd(r, 300));
		kill(pid, SIGKILL);
	}
	self->busy_since = now();
	deadline = now() + LIMIT_MS + 2000;
	while (waitpid(pid, &status, WNOHANG) != pid) {
		if (now() > deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			break;
		}
		sleep_ms(5);
	}
	self->busy_since = 0;
	return 0;
}

/*
 * A request the kernel makes itself (through the test caller module: dns_query()
 * or an override-credential request, in our context or a kernel thread's),
 * routed by the kernel rule to scoped agents or left to /sbin/request-key.
 */
static long do_kernel_request(struct rng *r, struct worker *w)
{
	const char *file = PICK(r, ((const char *[]){ "dns_query", "dns_query", "request",
						      "request", "dns_query_kthread",
						      "request_kthread" }));
	char name[300], answer[128];
	long ret;

	switch (rnd(r, 10)) {
	case 0: snprintf(name, sizeof(name), "%s", ""); break;
	case 1: snprintf(name, sizeof(name), "%s", long_string('n', 299)); break;
	case 2: snprintf(name, sizeof(name), "fz:%u", rnd(r, 8)); break;
	default: snprintf(name, sizeof(name), "fz%d-%lu.example", w->index, w->iter); break;
	}
	note("kernel request %s(%.40s)", file, name);
	self->busy_since = now();
	ret = kernel_query(file, name, answer, sizeof(answer));
	self->busy_since = 0;
	bump(&sh->kernel_requests);
	return ret;
}

static long do_op(struct rng *r, struct worker *w, enum op op)
{
	key_serial_t own = own_key(w, r);
	struct payload p;
	const char *type, *desc;
	key_serial_t k, ring;
	size_t len;
	void *buf;
	long ret;

	switch (op) {
	case OP_ADD_KEY:
		type = gen_type(r, 0);
		desc = gen_desc(r, type, w->index, w->iter);
		p = gen_payload(r, type && strcmp(type, "keyagent") == 0);
		if (type && strcmp(type, "keyring") == 0 && chance(r, 80))
			p.data = NULL, p.len = 0;
		ring = gen_keyring(r, own);
		note("add_key(%.20s, %.30s, %p/%zu, %d)", type ? type : "NULL", desc ? desc : "NULL",
		     p.data, p.len, ring);
		ret = sc(__NR_add_key, (long)type, (long)desc, (long)p.data, p.len, ring);
		own_add(w, ret, type && !strcmp(type, "keyring") ? P_KEYRING :
			       type && !strcmp(type, "keyagent") ? P_AGENT : P_ANY);
		return ret;
	case OP_REGISTER:
		desc = gen_agent_desc(r);
		p = gen_payload(r, 1);
		ring = PICK(r, ((key_serial_t[]){ KEY_SPEC_SESSION_KEYRING, KEY_SPEC_THREAD_KEYRING,
			KEY_SPEC_THREAD_KEYRING, KEY_SPEC_PROCESS_KEYRING, 0 }));
		if (!ring)
			ring = gen_keyring(r, own);
		note("add_key(keyagent, %.30s, %zu bytes, %d)", desc, p.len, ring);
		ret = sc(__NR_add_key, (long)"keyagent", (long)desc, (long)p.data, p.len, ring);
		own_add(w, ret, P_AGENT);
		return ret;
	case OP_REQUEST:
		return do_request(r, w);
	case OP_GET_KEYRING_ID:
		k = chance(r, 80) ? PICK(r, special_ids) : gen_key(r, own);
		note("get_keyring_id(%d)", k);
		ret = KEYCTL(KEYCTL_GET_KEYRING_ID, k, rnd(r, 2), 0, 0);
		if (ret > 0)
			pool_add(P_KEYRING, ret);
		return ret;
	case OP_JOIN: {
		char name[64];
		const char *n = NULL;

		switch (rnd(r, 8)) {
		case 0: case 1: n = NULL; break;
		case 2: session_name(name, sizeof(name), sh->epoch, rnd(r, sh->parts)); n = name; break;
		case 3: n = ""; break;
		case 4: n = long_string('j', 5000); break;
		case 5: n = PICK(r, ((const char *[]){ "_uid.0", "_uid_ses.0", ".user_reg",
						       "_persistent.0", "keyagent" })); break;
		default: snprintf(name, sizeof(name), "fz-ring-%u", rnd(r, 4)); n = name; break;
		}
		note("join(%.30s)", n ? n : "NULL");
		ret = KEYCTL(KEYCTL_JOIN_SESSION_KEYRING, n, 0, 0, 0);
		if (ret > 0)
			pool_add(P_KEYRING, ret);
		w->session_protected = ret > 0 && (ret == sh->protected[0] || ret == sh->protected[1] ||
						   ret == sh->protected[2]);
		w->rejoin_in = 1 + rnd(r, 20);
		return ret;
	}
	case OP_UPDATE:
		k = gen_key(r, own);
		p = gen_payload(r, chance(r, 30));
		note("update(%d, %p/%zu)", k, p.data, p.len);
		return KEYCTL(KEYCTL_UPDATE, k, p.data, p.len, 0);
	case OP_REVOKE:
		k = gen_key(r, own);
		k = unprotected(w, r, k);
		note("revoke(%d)", k);
		return KEYCTL(KEYCTL_REVOKE, k, 0, 0, 0);
	case OP_CHOWN: {
		static const int ids[] = { -1, -1, 0, 1000, 65534, 12345 };
		int uid = PICK(r, ids), gid = PICK(r, ids);

		k = unprotected(w, r, gen_key(r, own));
		note("chown(%d, %d, %d)", k, uid, gid);
		return KEYCTL(KEYCTL_CHOWN, k, uid, gid, 0);
	}
	case OP_SETPERM: {
		static const unsigned int perms[] = { 0, 0x3f3f3f3f, 0x3f010000, 0x01010101,
			0x3f0b0000, 0x3f3f0000, 0xffffffff, 0x00ff0000, 0x08000000 };
		unsigned int perm = chance(r, 80) ? PICK(r, perms) : (unsigned int)next(r);

		k = unprotected(w, r, gen_key(r, own));
		note("setperm(%d, %#x)", k, perm);
		return KEYCTL(KEYCTL_SETPERM, k, perm, 0, 0);
	}
	case OP_DESCRIBE:
		k = gen_key(r, own);
		buf = gen_buffer(r, &len);
		note("describe(%d, %p, %zu)", k, buf, len);
		return KEYCTL(KEYCTL_DESCRIBE, k, buf, len, 0);
	case OP_CLEAR:
		k = gen_keyring(r, own);
		note("clear(%d)", k);
		return KEYCTL(KEYCTL_CLEAR, k, 0, 0, 0);
	case OP_LINK:
		k = gen_key(r, own);
		ring = gen_keyring(r, own);
		note("link(%d, %d)", k, ring);
		return KEYCTL(KEYCTL_LINK, k, ring, 0, 0);
	case OP_UNLINK:
		k = gen_key(r, own);
		ring = gen_keyring(r, own);
		note("unlink(%d, %d)", k, ring);
		return KEYCTL(KEYCTL_UNLINK, k, ring, 0, 0);
	case OP_SEARCH:
		ring = gen_keyring(r, own);
		type = gen_type(r, 0);
		desc = type && !strcmp(type, "keyagent") ? gen_agent_desc(r) :
		       gen_desc(r, type, w->index, w->iter);
		k = chance(r, 70) ? 0 : gen_keyring(r, own);
		note("search(%d, %.20s, %.30s, %d)", ring, type ? type : "NULL", desc ? desc : "NULL", k);
		ret = KEYCTL(KEYCTL_SEARCH, ring, type, desc, k);
		own_add(w, ret, type && !strcmp(type, "keyagent") ? P_AGENT : P_ANY);
		return ret;
	case OP_READ:
		k = gen_key(r, own);
		buf = gen_buffer(r, &len);
		note("read(%d, %p, %zu)", k, buf, len);
		return KEYCTL(KEYCTL_READ, k, buf, len, 0);
	case OP_INSTANTIATE:
		k = chance(r, 60) ? pool_pick(r, P_UC) : gen_key(r, own);
		p = gen_payload(r, chance(r, 20));
		ring = chance(r, 70) ? 0 : gen_keyring(r, own);
		note("instantiate(%d, %p/%zu, %d)", k, p.data, p.len, ring);
		return KEYCTL(KEYCTL_INSTANTIATE, k, p.data, p.len, ring);
	case OP_INSTANTIATE_IOV: {
		struct iovec iov[4] = {
			{ scratch, rnd(r, 64) }, { NULL, 0 }, { scratch, rnd(r, 4096) }, { (void *)16, 8 },
		};
		unsigned int n = PICK(r, ((unsigned int[]){ 0, 1, 2, 3, 4, 1025, UINT_MAX }));
		struct iovec *v = chance(r, 10) ? NULL : iov;

		if (n > 4 && v)
			n = chance(r, 50) ? n : 3;
		k = chance(r, 60) ? pool_pick(r, P_UC) : gen_key(r, own);
		note("instantiate_iov(%d, %p, %u)", k, (void *)v, n);
		return KEYCTL(KEYCTL_INSTANTIATE_IOV, k, v, n, 0);
	}
	case OP_NEGATE:
		k = chance(r, 60) ? pool_pick(r, P_UC) : gen_key(r, own);
		note("negate(%d)", k);
		return KEYCTL(KEYCTL_NEGATE, k, rnd(r, 3), chance(r, 80) ? 0 : gen_keyring(r, own), 0);
	case OP_REJECT:
		k = chance(r, 60) ? pool_pick(r, P_UC) : gen_key(r, own);
		note("reject(%d)", k);
		return KEYCTL(KEYCTL_REJECT, k, rnd(r, 3), PICK(r, ((int[]){ 0, 1, EKEYREJECTED,
			ENOKEY, 4095, 4096, 512, -1 })), chance(r, 80) ? 0 : gen_keyring(r, own));
	case OP_SET_REQKEY_KEYRING: {
		int which = (int)rnd(r, 11) - 1;

		note("set_reqkey_keyring(%d)", which);
		return KEYCTL(KEYCTL_SET_REQKEY_KEYRING, which, 0, 0, 0);
	}
	case OP_SET_TIMEOUT:
		k = gen_key(r, own);
		k = unprotected(w, r, k);
		note("set_timeout(%d)", k);
		return KEYCTL(KEYCTL_SET_TIMEOUT, k, PICK(r, ((unsigned int[]){ 0, 1, 2, 60, UINT_MAX })), 0, 0);
	case OP_ASSUME_AUTHORITY:
		switch (rnd(r, 6)) {
		case 0: k = 0; break;
		case 1: k = KEY_SPEC_REQKEY_AUTH_KEY; break;
		case 2: k = pool_pick(r, P_AUTH); break;
		default: k = pool_pick(r, P_UC); break;
		}
		ret = assume(k);
		if (ret >= 0 && k > 0 && chance(r, 70)) {
			/* We hold someone's construction: answer it. */
			instantiate(r, k, "worker");
			assume(0);
		}
		return ret;
	case OP_GET_SECURITY:
		k = gen_key(r, own);
		buf = gen_buffer(r, &len);
		note("get_security(%d, %p, %zu)", k, buf, len);
		return KEYCTL(KEYCTL_GET_SECURITY, k, buf, len, 0);
	case OP_SESSION_TO_PARENT:
		note("session_to_parent");
		return KEYCTL(KEYCTL_SESSION_TO_PARENT, 0, 0, 0, 0);
	case OP_INVALIDATE:
		k = gen_key(r, own);
		k = unprotected(w, r, k);
		note("invalidate(%d)", k);
		return KEYCTL(KEYCTL_INVALIDATE, k, 0, 0, 0);
	case OP_GET_PERSISTENT: {
		int uid = PICK(r, ((int[]){ -1, 0, 1000, 65534, -2 }));

		ring = gen_keyring(r, own);
		note("get_persistent(%d, %d)", uid, ring);
		ret = KEYCTL(KEYCTL_GET_PERSISTENT, uid, ring, 0, 0);
		if (ret > 0)
			pool_add(P_KEYRING, ret);
		return ret;
	}
	case OP_RESTRICT_KEYRING: {
		const char *rtype = PICK(r, ((const char *[]){ NULL, "keyring", "user", "asymmetric",
							  "keyagent", "", "garbage" }));
		const char *restriction = PICK(r, ((const char *[]){ NULL, "builtin_trusted",
			"key_or_keyring:1", "", "x" }));

		/* Restricting the shared session would stop all registration. */
		k = unprotected(w, r, chance(r, 80) ? own_key(w, r) : gen_keyring(r, own));
		note("restrict_keyring(%d, %s, %s)", k, rtype ? rtype : "NULL",
		     restriction ? restriction : "NULL");
		return KEYCTL(KEYCTL_RESTRICT_KEYRING, k, rtype, restriction, 0);
	}
	case OP_MOVE:
		k = gen_key(r, own);
		note("move(%d)", k);
		return KEYCTL(KEYCTL_MOVE, k, gen_keyring(r, own), gen_keyring(r, own),
			      PICK(r, ((unsigned int[]){ 0, 0, 1, 2, UINT_MAX })));
	case OP_CAPABILITIES:
		buf = gen_buffer(r, &len);
		note("capabilities(%p, %zu)", buf, len);
		return KEYCTL(KEYCTL_CAPABILITIES, buf, len, 0, 0);
	case OP_OTHER_KEYCTL: {
		int cmd = PICK(r, ((int[]){ 23, 24, 25, 26, 27, 28, KEYCTL_WATCH_KEY, 33, 100, -1 }));

		k = gen_key(r, own);
		note("keyctl(%d, %d)", cmd, k);
		return KEYCTL(cmd, k, chance(r, 50) ? scratch : NULL, rnd(r, 64), chance(r, 50) ? scratch : NULL);
	}
	case OP_PROC:
		switch (rnd(r, 6)) {
		case 0: case 1: case 2:
			note("harvest /proc/keys");
			return harvest_proc_keys();
		case 3:
			note("read /proc/key-users");
			read_file_once("/proc/key-users");
			return 0;
		case 4:
			note("read counters");
			read_file_once(STATS_DIR "routed");
			read_file_once(STATS_DIR "answered");
			return 0;
		default:
			note("read parameters");
			read_file_once(PARAMS_DIR "request_timeout");
			read_file_once(PARAMS_DIR "max_pending");
			return 0;
		}
	case OP_SERVE:
		worker_serve(w, r);
		return 0;
	case OP_CHILD:
		return do_child(r, w);
	case OP_KERNEL_REQUEST:
		return do_kernel_request(r, w);
	case OP_CHANNEL:
		return chan_op(r, &w->chans);
	default:
		return 0;
	}
}

static enum op pick_op(struct rng *r)
{
	static unsigned int total;
	unsigned int n, i;

	if (!total)
		for (i = 0; i < OP_COUNT; i++)
			total += op_weights[i];
	n = rnd(r, total);
	for (i = 0; i < OP_COUNT; i++) {
		if (n < op_weights[i])
			return i;
		n -= op_weights[i];
	}
	return OP_REQUEST;
}

static void worker_main(int index, int gen, uint64_t seed, long ops)
{
	struct rng r = { seed };
	struct worker w = { .index = index, .epoch = -1 };
	long i, t;

	self = take_slot(index, R_WORKER, gen);
	open_trace("worker", index, gen);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	block_rt_signals();
	w.sfd = rt_signalfd();
	chans_init(&w.chans);
	for (i = 0; i < ops && !sh->stop; i++) {
		struct rng o = { next(&r) };
		enum op op = pick_op(&o);
		long ret;

		w.iter = self->iter = i;
		if (w.epoch != sh->epoch || w.rejoin_in == 1 || i % 64 == 0) {
			w.epoch = sh->epoch;
			join_epoch(w.epoch, w.index);
			w.session_protected = 0;
		}
		if (w.rejoin_in > 0)
			w.rejoin_in--;
		if (sh->unloading)
			chans_close_all(&w.chans);
		if (trace)
			fprintf(trace, "%ld op %s\n", i, op_names[op]);
		t = now();
		ret = do_op(&o, &w, op);
		t = now() - t;
		__atomic_fetch_add(&sh->ops_ms[op], t, __ATOMIC_RELAXED);
		if (trace)
			fprintf(trace, "  = %ld (%s) %ld ms\n", ret, ret < 0 ? strerror(-ret) : "ok", t);
		bump(&sh->ops[op]);
		if (ret >= 0)
			bump(&sh->ops_ok[op]);
		if (i % 16 == 0)
			worker_serve(&w, &o);
	}
	_exit(0);
}

/* ----------------------------------------------------------------------
 * The supervisor: watchdog, epochs, final checks.
 */
static void fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	printf("# FAIL: ");
	vprintf(fmt, ap);
	printf("\n");
	va_end(ap);
	fflush(stdout);
	__atomic_fetch_add(&sh->failures, 1, __ATOMIC_RELAXED);
}

static void dump_file(const char *path, const char *prefix)
{
	FILE *f = fopen(path, "r");
	char line[512];
	int n = 0;

	if (!f)
		return;
	while (fgets(line, sizeof(line), f) && n++ < 60)
		printf("# %s%s", prefix, line);
	fclose(f);
}

static void dump_slot(struct slot *s)
{
	unsigned int i, pos = s->ring_pos;
	char path[64];

	printf("#   pid %d, role %d, index %d, generation %d, op #%lu; last operations:\n",
	       s->pid, s->role, s->index, s->gen, s->iter);
	for (i = pos > RING ? pos - RING : 0; i < pos; i++)
		printf("#     %s\n", s->ring[i % RING]);
	snprintf(path, sizeof(path), "/proc/%d/stack", s->pid);
	dump_file(path, "    stack: ");
	snprintf(path, sizeof(path), "/proc/%d/wchan", s->pid);
	dump_file(path, "    wchan: ");
	printf("\n");
}

static int hung;

static void watchdog(void)
{
	long t = now();
	int i;

	for (i = 0; i < SLOTS; i++) {
		struct slot *s = &sh->slot[i];
		long since = s->busy_since;

		if (!s->pid || !since || s->hung || t - since <= LIMIT_MS)
			continue;
		s->hung = 1;
		hung++;
		fail("a syscall has been blocked for %ld ms (limit %d ms: request_timeout %d s + %d s)",
		     t - since, LIMIT_MS, TIMEOUT_S, SLACK_MS / 1000);
		dump_slot(s);
		dump_file("/proc/keys", "    keys: ");
		kill(s->pid, SIGKILL);
	}
}

/* Makes the session keyrings of the next epoch, held by our process keyring. */
static void new_epoch(void)
{
	static key_serial_t held[MAX_WORKERS];
	char name[64];
	long ret;
	int i;

	for (i = 0; i < sh->parts; i++) {
		session_name(name, sizeof(name), sh->epoch + 1, i);
		ret = add_key("keyring", name, NULL, 0, KEY_SPEC_PROCESS_KEYRING);
		if (ret > 0) {
			/* Others join it by name: it must grant them search. */
			keyctl_setperm(ret, KEY_POS_ALL | KEY_USR_ALL | KEY_OTH_VIEW | KEY_OTH_SEARCH);
			pool_add(P_KEYRING, ret);
		}
		if (held[i] > 0)
			keyctl_unlink(held[i], KEY_SPEC_PROCESS_KEYRING);
		held[i] = ret;
		sh->sessions[i] = ret;
		sh->part_key[i] = 0;
	}
	sh->epoch++;
}

/* Lines of /proc/keys whose flags show a key under construction. */
static int keys_under_construction(int print)
{
	FILE *f = fopen("/proc/keys", "r");
	char line[512], flags[16];
	int n = 0;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%*x %15s", flags) == 1 && strchr(flags, 'U')) {
			n++;
			if (print)
				printf("#   %s", line);
		}
	fclose(f);
	return n;
}

/* Users whose key count differs from their instantiated key count. */
static int uninstantiated_keys(int print)
{
	FILE *f = fopen("/proc/key-users", "r");
	long uid, usage, nkeys, nikeys;
	char line[256];
	int n = 0;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, " %ld: %ld %ld/%ld", &uid, &usage, &nkeys, &nikeys) == 4 &&
		    nkeys != nikeys) {
			n++;
			if (print)
				printf("#   key-users: %s", line);
		}
	fclose(f);
	return n;
}

/* keyagent keys that still count constructions in flight. */
static int agents_with_pending(int print)
{
	FILE *f = fopen("/proc/keys", "r");
	char line[512];
	int n = 0;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		char *p = strstr(line, " pending ");

		if (strstr(line, " keyagent ") && p && atoi(p + 9) != 0) {
			n++;
			if (print)
				printf("#   %s", line);
		}
	}
	fclose(f);
	return n;
}

/* A plain agent, a plain request: the module still works. */
static int sanity(void)
{
	const char *args[] = { NULL };
	struct agent a = { 0 };
	int ok = 0, i;
	char desc[32], buf[64];

	if (keyctl_join_session_keyring(NULL) < 0 || agent_start(&a, args) < 0)
		return 0;
	for (i = 0; i < 10; i++) {
		long key;

		snprintf(desc, sizeof(desc), "fz:sanity:%d", i);
		key = request("user", desc, "ok", 0);
		if (key > 0 && payload(key, buf, sizeof(buf)) > 0 && strcmp(buf, "agent:ok") == 0)
			ok++;
		else
			printf("# sanity request %d: %s\n", i, key < 0 ? strerror(-key) : buf);
	}
	agent_stop(&a);
	return ok == 10;
}

/* Puts root's user keyrings back as they were, in case a worker changed them. */
static void restore_user_keyrings(void)
{
	key_serial_t rings[] = {
		keyctl_get_keyring_ID(KEY_SPEC_USER_KEYRING, 0),
		keyctl_get_keyring_ID(KEY_SPEC_USER_SESSION_KEYRING, 0),
		sh->protected[2],
	};
	unsigned int i;

	for (i = 0; i < sizeof(rings) / sizeof(rings[0]); i++) {
		if (rings[i] <= 0)
			continue;
		keyctl_chown(rings[i], 0, 0);
		keyctl_setperm(rings[i], (KEY_POS_ALL & ~KEY_POS_SETATTR) | KEY_USR_ALL);
		keyctl_clear(rings[i]);
	}
}

static void print_stats(long elapsed_ms)
{
	unsigned long total = 0;
	int i;

	for (i = 0; i < OP_COUNT; i++)
		total += sh->ops[i];
	printf("# after %ld s: %lu operations, %lu request_key (%lu keys), %lu kernel requests, "
	       "%lu signals to agents, %lu answers, %lu agents started (%lu channel agents), "
	       "%lu records read from channels, %lu channel writes taken, %lu reloads, "
	       "slowest request %ld ms\n",
	       elapsed_ms / 1000, total, sh->requests, sh->requests_ok, sh->kernel_requests,
	       sh->agent_signals, sh->agent_answers, sh->agents_started, sh->chan_agents,
	       sh->chan_records, sh->chan_answers, sh->reloads, sh->max_request_ms);
	fflush(stdout);
}

static void usage(void)
{
	fprintf(stderr, "usage: keyagent_fuzz_test [-s SEED] [-d SECONDS] [-w WORKERS] "
			"[-a AGENTS] [-r] [-T DIR]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	int nworkers = 4, nagents = 8, reload = 1, opt, i, status;
	pid_t workers[MAX_WORKERS] = { 0 }, manager, reloader = 0;
	int worker_gen[MAX_WORKERS] = { 0 };
	long duration = 45, start, end, last_epoch, last_stats, ms;
	uint64_t seed = 0;
	int have_seed = 0, n, stopped_clean = 1;
	char params[64];

	while ((opt = getopt(argc, argv, "s:d:w:a:rT:h")) != -1) {
		switch (opt) {
		case 's': seed = strtoull(optarg, NULL, 0); have_seed = 1; break;
		case 'd': duration = atol(optarg); break;
		case 'w': nworkers = atoi(optarg); break;
		case 'a': nagents = atoi(optarg); break;
		case 'r': reload = 0; break;
		case 'T': trace_dir = optarg; break;
		default: usage();
		}
	}
	if (nworkers < 1 || nworkers > MAX_WORKERS || nagents < 0 || nagents > MAX_AGENTS)
		usage();
	if (!have_seed) {
		int fd = open("/dev/urandom", O_RDONLY);

		if (fd < 0 || read(fd, &seed, sizeof(seed)) != sizeof(seed))
			seed = (uint64_t)time(NULL) * 2654435761u ^ getpid();
		if (fd >= 0)
			close(fd);
		seed &= 0xffffffffffffULL;	/* short enough to type */
	}

	ksft_print_header();
	ksft_set_plan(6);
	printf("# seed %llu, %ld s, %d workers, %d agents, reload %s (replay: -s %llu)\n",
	       (unsigned long long)seed, duration, nworkers, nagents, reload ? "on" : "off",
	       (unsigned long long)seed);
	fflush(stdout);
	if (getuid() != 0)
		ksft_exit_skip("needs root\n");
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		ksft_exit_fail_msg("mmap: %s\n", strerror(errno));
	memset(sh, 0, sizeof(*sh));
	sh->sup_pid = getpid();
	sh->parts = nagents < nworkers ? (nagents ? nagents : 1) : nworkers;
	self = take_slot(SLOTS - 1, R_MANAGER, 0);
	self->pid = 0;	/* not watched */
	if (!module_loaded()) {
		snprintf(params, sizeof(params), "request_timeout=%d", TIMEOUT_S);
		if (load_module(params) != 0 && !module_loaded())
			ksft_exit_skip("keyagent module not loaded and cannot be loaded\n");
	}
	sh->protected[0] = keyctl_get_keyring_ID(KEY_SPEC_USER_KEYRING, 1);
	sh->protected[1] = keyctl_get_keyring_ID(KEY_SPEC_USER_SESSION_KEYRING, 1);
	sh->protected[2] = keyctl_get_persistent(0, KEY_SPEC_PROCESS_KEYRING);
	snprintf(params, sizeof(params), "%d", TIMEOUT_S);
	param_set("request_timeout", params);
	param_set("max_pending", "128");
	param_set("global_types", "keyagent_test");
	/* The kernel's own requests; without the module they fail with ENOENT. */
	if (caller_module_load())
		printf("# no test caller module: kernel requests fail with ENOENT\n");
	new_epoch();

	manager = fork();
	if (manager == 0)
		manager_main(nagents, mix(seed, 0x200, 0));
	if (reload) {
		reloader = fork();
		if (reloader == 0)
			reloader_main(mix(seed, 0x300, 0));
	}

	start = now();
	end = start + duration * 1000;
	last_epoch = last_stats = start;
	while (now() < end) {
		for (i = 0; i < nworkers; i++) {
			if (workers[i] > 0 && waitpid(workers[i], &status, WNOHANG) == workers[i]) {
				if (WIFSIGNALED(status) && WTERMSIG(status) != SIGKILL) {
					fail("worker %d (generation %d) died of signal %d",
					     i, worker_gen[i] - 1, WTERMSIG(status));
					dump_slot(&sh->slot[i]);
				}
				sh->slot[i].pid = 0;
				workers[i] = 0;
			}
			if (workers[i] == 0) {
				/* Workers come and go, so that their own keyrings do too. */
				uint64_t s = mix(seed, 0x100 + i, worker_gen[i]);
				long ops = 500 + mix(seed, 0x400 + i, worker_gen[i]) % 2500;

				workers[i] = fork();
				if (workers[i] == 0)
					worker_main(i, worker_gen[i], s, ops);
				worker_gen[i]++;
			}
		}
		sleep_ms(100);
		watchdog();
		if (now() - last_epoch >= EPOCH_MS) {
			new_epoch();
			last_epoch = now();
		}
		if (now() - last_stats >= 10000) {
			print_stats(now() - start);
			last_stats = now();
		}
	}

	/* Stop everyone, still watching. */
	sh->stop = 1;
	ms = now();
	for (;;) {
		int running = 0;

		for (i = 0; i < nworkers; i++)
			if (workers[i] > 0) {
				if (waitpid(workers[i], &status, WNOHANG) == workers[i])
					workers[i] = 0;
				else
					running++;
			}
		if (!running)
			break;
		watchdog();
		if (now() - ms > LIMIT_MS + 5000) {
			stopped_clean = 0;
			for (i = 0; i < nworkers; i++)
				if (workers[i] > 0) {
					fail("worker %d does not stop", i);
					dump_slot(&sh->slot[i]);
					kill(workers[i], SIGKILL);
					waitpid(workers[i], NULL, 0);
				}
			break;
		}
		sleep_ms(50);
	}
	waitpid(manager, NULL, 0);
	if (reloader > 0)
		waitpid(reloader, NULL, 0);
	print_stats(now() - start);
	printf("# operations (ok/calls time):");
	for (i = 0; i < OP_COUNT; i++)
		printf("%s %s %lu/%lu %lums", i % 4 ? "," : "\n#  ", op_names[i], sh->ops_ok[i],
		       sh->ops[i], sh->ops_ms[i]);
	printf("\n# request_key errors:");
	for (i = 0; i < 150; i++)
		if (sh->request_errno[i])
			printf(" %s %lu,", strerrorname_np(i) ? strerrorname_np(i) : "?", sh->request_errno[i]);
	printf("\n# module: %lu reloads, %lu param changes, %lu unloads refused for 10 s\n",
	       sh->reloads, sh->param_changes, sh->unload_busy);
	fflush(stdout);

	if (hung == 0 && stopped_clean)
		ksft_test_result_pass("no syscall blocked past request_timeout + %d s\n", SLACK_MS / 1000);
	else
		ksft_test_result_fail("%d syscall(s) blocked past request_timeout + %d s\n",
				      hung, SLACK_MS / 1000);

	/* Every construction ends: by its agent, its agent's death, or the timeout. */
	if (wait_for(keys_under_construction(0) == 0, TIMEOUT_S * 1000 + SLACK_MS)) {
		ksft_test_result_pass("no key left under construction\n");
	} else {
		printf("# keys still under construction %d s after everything stopped:\n",
		       TIMEOUT_S + SLACK_MS / 1000);
		keys_under_construction(1);
		ksft_test_result_fail("keys left under construction\n");
	}
	if (wait_for(uninstantiated_keys(0) == 0, WAIT_MS)) {
		ksft_test_result_pass("every user's keys are all instantiated\n");
	} else {
		uninstantiated_keys(1);
		ksft_test_result_fail("uninstantiated keys in /proc/key-users\n");
	}
	if (wait_for(agents_with_pending(0) == 0, WAIT_MS)) {
		ksft_test_result_pass("no agent key counts pending constructions\n");
	} else {
		agents_with_pending(1);
		ksft_test_result_fail("agent keys still count pending constructions\n");
	}

	/* No construction holds the module any more: it must unload at once. */
	n = unload_module(WAIT_MS);
	printf("# module counters over the run:");
	for (i = 0; i < 9; i++)
		printf(" %s %lu", counter_names[i], sh->counters[i]);
	printf("\n");
	if (n == 0) {
		ksft_test_result_pass("module unloads\n");
	} else {
		dump_file("/proc/modules", "modules: ");
		ksft_test_result_fail("module does not unload: %s\n", strerror(-n));
	}
	load_module("");
	restore_user_keyrings();
	if (sanity())
		ksft_test_result_pass("an agent answers after the run\n");
	else
		ksft_test_result_fail("an agent does not answer after the run\n");
	printf("# seed %llu%s\n", (unsigned long long)seed,
	       ksft_get_fail_cnt() || sh->failures ? " FAILED: replay with -s" : "");
	if (sh->failures && !ksft_get_fail_cnt())
		ksft_exit_fail();
	ksft_finished();
}
