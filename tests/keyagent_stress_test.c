// SPDX-License-Identifier: GPL-2.0
/*
 * Stress: many constructions through pools of agents whose members are killed
 * and restarted at random, while the module is unloaded and reloaded.
 *
 *   keyagent_stress_test [-n CONSTRUCTIONS] [-d SECONDS] [-g GROUPS]
 *                        [-r REQUESTERS] [-s SEED]
 *
 *   -n N        constructions to make (default 2000; 0: no limit)
 *   -d SECONDS  stop after this long even if fewer were made (default 30;
 *               0: no limit)
 *   -g N        groups (default 4): each is a session keyring with a pool of
 *               agents (a signal agent and two channel agents, one key) and
 *               its requesters
 *   -r N        requesters per group (default 3)
 *   -s SEED     seed of the random kills and reloads (default: random)
 *   -K          do not kill agents
 *   -R          do not unload and reload the module
 *   -v          print every request
 *
 * Every request asks for a new key, so each is one construction: answered by
 * an agent of the group's pool, or by /sbin/request-key while the group has no
 * live agent (the module unloaded, the agents just killed). A channel agent
 * killed with constructions it had not read leaves them to the other channel
 * agent of its pool. Channels hold the module: channel agents close theirs
 * while the module is being unloaded. A request may fail only with the
 * errors the module documents for these events (EOWNERDEAD, ECANCELED,
 * ENOKEY). Afterwards /proc/key-users must return to what it was before, once
 * the key garbage collector has run, and the module must unload.
 */
#include <dirent.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>

#include "kselftest.h"
#include "keyagent_util.h"

#define TIMEOUT_S 10		/* request_timeout during the run */
/*
 * A request is hung past this. Not request_timeout + a little: while the
 * module reloads, requests go to /sbin/request-key (three programs to exec in
 * the debug guest, tens at a time), and the unload itself waits for every
 * request_key() in flight while new ones wait for it: such a convoy has been
 * seen to hold a request for 25 s on an idle host, and it grows with the
 * host's load. A hang is forever; this only says when to report it: 10x
 * that convoy. (The kernel's hung task detector reports a task blocked
 * uninterruptibly for 60 s on its own.)
 */
#ifndef LIMIT_MS
#define LIMIT_MS (300 * 1000)
#endif
#define MAX_GROUPS 16
#define MAX_REQUESTERS 16
#define SIG 40
/* Members of each group's pool: 0 the signal agent, 1 and 2 channel agents. */
#define MEMBERS 3

struct shared {
	volatile int stop;
	volatile int module_gen;
	volatile long limit;			/* constructions to make, 0: no limit */
	volatile long claimed, done, ok, unexpected, max_ms;
	volatile long errors[150];
	volatile long busy_since[MAX_GROUPS * MAX_REQUESTERS];
	volatile pid_t pid[MAX_GROUPS * MAX_REQUESTERS];
	volatile long registrations[MAX_GROUPS * MEMBERS];
	volatile int unloading;
	volatile long counters[10];
	volatile long reloads, unload_busy, restarts, hard_kills;
};

static struct shared *sh;
static int verbose, no_kills, no_reloads, dumped;

#define NCOUNTERS 10
static const char *const counter_names[NCOUNTERS] = {
	"routed", "answered", "fallback", "timeouts", "dead_agents", "orphaned",
	"signal_failures", "busy", "cancelled", "rehanded",
};

static uint64_t next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static unsigned int rnd(uint64_t *s, unsigned int n)
{
	return n ? next(s) % n : 0;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static void add_counter(volatile long *c, long v)
{
	__atomic_fetch_add(c, v, __ATOMIC_RELAXED);
}

/* ------------------------------------------------------------------ */

/* A signal agent that answers everything at once, and registers again after a reload. */
static void agent_main(int group, int member)
{
	struct signalfd_siginfo si;
	int sfd, gen = -1;
	key_serial_t key = 0;
	sigset_t set;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	sigemptyset(&set);
	sigaddset(&set, SIG);
	sigprocmask(SIG_BLOCK, &set, NULL);
	sfd = signalfd(-1, &set, SFD_CLOEXEC);
	for (;;) {
		struct pollfd pfd = { sfd, POLLIN, 0 };

		if (gen != sh->module_gen || key <= 0) {
			gen = sh->module_gen;
			key = add("keyagent", "user", "40 pool", 7, KEY_SPEC_SESSION_KEYRING);
			if (key > 0)
				add_counter(&sh->registrations[group * MEMBERS + member], 1);
		}
		if (poll(&pfd, 1, 100) != 1)
			continue;
		if (read(sfd, &si, sizeof(si)) != sizeof(si) || si.ssi_code != KEYAGENT_SI_CODE)
			continue;
		if (keyctl_assume_authority(si.ssi_int) >= 0) {
			if (keyctl_instantiate(si.ssi_int, "ok", 2, 0) < 0 && verbose)
				printf("# agent: instantiate(%d): %m\n", si.ssi_int);
		} else if (verbose) {
			printf("# agent: assume_authority(%d): %m\n", si.ssi_int);
		}
	}
}

/*
 * A channel agent: reads records in batches and answers them in one write;
 * closes its channel while the module is being unloaded, and registers a new
 * one after.
 */
static void channel_agent_main(int group, int member)
{
	static char buf[8 * KEYAGENT_REQUEST_MAX], out[8 * KEYAGENT_REQUEST_MAX / 40 * 32];
	int fd = -1, gen = -1;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	for (;;) {
		size_t len = 0, one;
		long got, pos;

		if (sh->unloading) {
			if (fd >= 0)
				close(fd);
			fd = -1;
			sleep_ms(10);
			continue;
		}
		if (fd < 0 || gen != sh->module_gen) {
			if (fd >= 0)
				close(fd);
			gen = sh->module_gen;
			fd = chan_open(0);
			if (fd < 0 || chan_register(fd, "user", " pool", KEY_SPEC_SESSION_KEYRING) < 0) {
				if (fd >= 0)
					close(fd);
				fd = -1;
				sleep_ms(20);
				continue;
			}
			add_counter(&sh->registrations[group * MEMBERS + member], 1);
		}
		got = chan_read(fd, buf, sizeof(buf), 100);
		for (pos = 0; got > 0 && pos < got;) {
			struct chan_req r;
			long n = chan_parse(buf + pos, got - pos, &r);

			if (n < 0) {
				printf("# channel agent %d/%d: malformed record\n", group, member);
				add_counter(&sh->unexpected, 1);
				break;
			}
			len += chan_instantiate(out + len, r.serial, "ok");
			pos += n;
		}
		if (len == 0 || chan_write(fd, out, len) == (long)len)
			continue;
		/* One ended meanwhile (ENOENT for the whole write): answer one by one. */
		for (pos = 0; (size_t)pos < len; pos += one) {
			one = ((struct keyagent_answer *)(out + pos))->size;
			chan_write(fd, out + pos, one);
		}
	}
}

static pid_t agent_start_in_group(int group, int member)
{
	long old = sh->registrations[group * MEMBERS + member];
	pid_t pid = fork();

	if (pid == 0) {
		if (member == 0)
			agent_main(group, member);
		channel_agent_main(group, member);
	}
	/* Wait until it has registered (joining the pool). */
	if (pid > 0)
		wait_for(sh->registrations[group * MEMBERS + member] != old || sh->stop, WAIT_MS);
	return pid;
}

/* Asks for new keys until told to stop; each request is one construction. */
static void requester_main(int group, int index)
{
	volatile long *busy = &sh->busy_since[group * MAX_REQUESTERS + index];
	long n, key, start, ms, made = 0;
	key_serial_t dest = 0;
	char desc[64];

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	sh->pid[group * MAX_REQUESTERS + index] = getpid();
	while (!sh->stop) {
		n = __atomic_fetch_add(&sh->claimed, 1, __ATOMIC_RELAXED);
		if (sh->limit && n >= sh->limit)
			break;
		/*
		 * The kernel charges a keyring's owner 4 bytes of quota per link.
		 * Links the garbage collector removes (the keys are invalidated)
		 * are given back only when the keyring dies, from a 16-bit count
		 * (key->quotalen) that wraps past 64 KiB. A fresh destination
		 * keyring every 1000 keys, replacing the last one, keeps that
		 * kernel behaviour out of the baseline check.
		 */
		if (made++ % 1000 == 0)
			dest = add("keyring", "stress:dest", NULL, 0, KEY_SPEC_PROCESS_KEYRING);
		snprintf(desc, sizeof(desc), "stress:%d:%d:%ld", group, index, n);
		start = now_ms();
		*busy = start;
		key = request("user", desc, "c", dest > 0 ? dest : 0);
		*busy = 0;
		ms = now_ms() - start;
		if (verbose)
			printf("# %s: %ld (%s) %ld ms\n", desc, key, key < 0 ? strerror(-key) : "ok", ms);
		if (ms > sh->max_ms)
			sh->max_ms = ms;
		add_counter(&sh->done, 1);
		if (key > 0) {
			add_counter(&sh->ok, 1);
			/* Let the collector have it at once. */
			keyctl_invalidate(key);
			continue;
		}
		if (-key < 150)
			add_counter(&sh->errors[-key], 1);
		if (key != -EOWNERDEAD && key != -ECANCELED && key != -ENOKEY) {
			if (__atomic_fetch_add(&sh->unexpected, 1, __ATOMIC_RELAXED) < 10)
				printf("# requester %d/%d: %s: unexpected %s\n", group, index, desc,
				       strerror(-key));
		}
	}
	_exit(0);
}

/* A session with a pool and requesters; a member is replaced or killed at random. */
static void group_main(int group, int requesters, uint64_t seed)
{
	pid_t agents[MEMBERS], req[MAX_REQUESTERS];
	int i;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (keyctl_join_session_keyring(NULL) < 0)
		_exit(1);
	for (i = 0; i < MEMBERS; i++)
		agents[i] = agent_start_in_group(group, i);
	for (i = 0; i < requesters; i++) {
		req[i] = fork();
		if (req[i] == 0)
			requester_main(group, i);
	}
	while (!sh->stop) {
		long until = now_ms() + 300 + rnd(&seed, 2000);

		while (!sh->stop && now_ms() < until)
			sleep_ms(20);
		if (sh->stop)
			break;
		if (no_kills)
			continue;
		i = rnd(&seed, MEMBERS);
		if (rnd(&seed, 10) < 5) {
			/* A new member joins, then the old one dies. */
			pid_t old = agents[i];

			agents[i] = agent_start_in_group(group, i);
			kill(old, SIGKILL);
			waitpid(old, NULL, 0);
		} else {
			/* Killed; the rest of the pool serves for a moment. */
			kill(agents[i], SIGKILL);
			waitpid(agents[i], NULL, 0);
			sleep_ms(rnd(&seed, 200));
			agents[i] = agent_start_in_group(group, i);
			add_counter(&sh->hard_kills, 1);
		}
		add_counter(&sh->restarts, 1);
	}
	for (i = 0; i < requesters; i++)
		waitpid(req[i], NULL, 0);
	for (i = 0; i < MEMBERS; i++) {
		kill(agents[i], SIGKILL);
		waitpid(agents[i], NULL, 0);
	}
	_exit(0);
}

/* ------------------------------------------------------------------ */

/* Every task, its state and its kernel stack: what a blocked request waits for. */
static void dump_tasks(void)
{
	DIR *proc = opendir("/proc"), *tasks;
	struct dirent *de, *te;
	char path[600], line[256];

	while (proc && (de = readdir(proc))) {
		if (de->d_name[0] < '1' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/task", de->d_name);
		tasks = opendir(path);
		if (!tasks) {
			FILE *f;

			printf("#   task %s: %s\n", de->d_name, strerror(errno));
			snprintf(path, sizeof(path), "/proc/%s/status", de->d_name);
			f = fopen(path, "r");
			while (f && fgets(line, sizeof(line), f))
				if (!strncmp(line, "Name", 4) || !strncmp(line, "State", 5) ||
				    !strncmp(line, "PPid", 4) || !strncmp(line, "Threads", 7))
					printf("#     %s", line);
			if (f)
				fclose(f);
			continue;
		}
		while ((te = readdir(tasks))) {
			FILE *f;

			if (te->d_name[0] < '1' || te->d_name[0] > '9')
				continue;
			snprintf(path, sizeof(path), "/proc/%s/task/%s/stat", de->d_name, te->d_name);
			f = fopen(path, "r");
			if (f && fgets(line, sizeof(line), f))
				printf("#   task %.100s", line);
			else
				printf("#   task %s/%s: %s\n", de->d_name, te->d_name, strerror(errno));
			if (f)
				fclose(f);
			if (!strchr(line, '\n'))
				printf("\n");
			snprintf(path, sizeof(path), "/proc/%s/task/%s/stack", de->d_name, te->d_name);
			f = fopen(path, "r");
			while (f && fgets(line, sizeof(line), f))
				printf("#     %s", line);
			if (f)
				fclose(f);
		}
		closedir(tasks);
	}
	if (proc)
		closedir(proc);
	{
		FILE *f = fopen("/proc/keys", "r");

		while (f && fgets(line, sizeof(line), f))
			printf("#   key %s", line);
		if (f)
			fclose(f);
	}
	fflush(stdout);
}

/* Loads the module, retrying while an unload is still under way. */
static int load_module(const char *params)
{
	long deadline = now_ms() + WAIT_MS;
	int ret;

	for (;;) {
		ret = module_load(params);
		if ((ret != -EBUSY && ret != -EAGAIN) || now_ms() >= deadline)
			break;
		sleep_ms(20);
	}
	return ret == -EEXIST ? 0 : ret;
}

/* Unloads the module, retrying while constructions hold it; adds up its counters. */
static int unload_module(long ms)
{
	long deadline = now_ms() + ms, values[NCOUNTERS];
	int i, ret;

	do {
		for (i = 0; i < NCOUNTERS; i++)
			values[i] = stat_read(counter_names[i]);
		ret = syscall(__NR_delete_module, "keyagent", O_NONBLOCK) < 0 ? -errno : 0;
		if (ret == 0) {
			for (i = 0; i < NCOUNTERS; i++)
				if (values[i] > 0)
					add_counter(&sh->counters[i], values[i]);
			return 0;
		}
		if (ret == -ENOENT)
			return 0;
		if (ret != -EAGAIN && ret != -EBUSY && ret != -EWOULDBLOCK)
			return ret;
		sleep_ms(5);
	} while (now_ms() < deadline);
	return ret;
}

static void cycler_main(uint64_t seed)
{
	char params[64];

	snprintf(params, sizeof(params), "request_timeout=%d", TIMEOUT_S);
	while (!sh->stop) {
		long until = now_ms() + 2000 + rnd(&seed, 4000);

		while (!sh->stop && now_ms() < until)
			sleep_ms(20);
		if (sh->stop)
			break;
		/* Channel agents close their channels, which hold the module. */
		sh->unloading = 1;
		/* Not a failure: requests kept the module busy; try again later. */
		if (unload_module(10000) != 0) {
			sh->unloading = 0;
			add_counter(&sh->unload_busy, 1);
			continue;
		}
		sleep_ms(rnd(&seed, 50));
		if (load_module(params) == 0) {
			add_counter(&sh->reloads, 1);
			__atomic_fetch_add(&sh->module_gen, 1, __ATOMIC_RELEASE);
		} else {
			printf("# reload failed\n");
		}
		sh->unloading = 0;
	}
	if (!module_loaded())
		load_module(params);
	_exit(0);
}

/* ------------------------------------------------------------------ */

/* /proc/key-users without the usage column's transient references. */
static int key_users_text(char *buf, size_t size)
{
	FILE *f = fopen("/proc/key-users", "r");
	char line[256];
	size_t n = 0;

	if (!f)
		return -1;
	buf[0] = 0;
	while (fgets(line, sizeof(line), f) && n < size - 1) {
		long uid, usage, nk, nik, qk, qkmax, qb, qbmax;

		if (sscanf(line, " %ld: %ld %ld/%ld %ld/%ld %ld/%ld", &uid, &usage, &nk, &nik,
			   &qk, &qkmax, &qb, &qbmax) != 8)
			continue;
		n += snprintf(buf + n, size - n, "uid %ld: usage %ld keys %ld/%ld quota %ld keys %ld bytes\n",
			      uid, usage, nk, nik, qk, qb);
	}
	fclose(f);
	return 0;
}

/* Waits until /proc/key-users stays the same for SETTLE_MS; returns it in @buf. */
static void settled_key_users_text(char *buf, size_t size)
{
	char last[4096] = "";
	long deadline = now_ms() + WAIT_MS, stable_since = now_ms();

	key_users_text(last, sizeof(last));
	while (now_ms() < deadline && now_ms() - stable_since < SETTLE_MS) {
		sleep_ms(250);
		key_users_text(buf, size);
		if (strcmp(buf, last)) {
			strcpy(last, buf);
			stable_since = now_ms();
		}
	}
	strcpy(buf, last);
}

/* Reports the requests blocked past LIMIT_MS (each once); returns how many. */
static int watchdog(int groups)
{
	int i, hung = 0;

	for (i = 0; i < groups * MAX_REQUESTERS; i++) {
		long since = sh->busy_since[i];

		if (since && now_ms() - since > LIMIT_MS) {
			char path[64], line[256];
			FILE *f;

			printf("# requester %d/%d blocked for %ld ms in request_key()\n",
			       i / MAX_REQUESTERS, i % MAX_REQUESTERS, now_ms() - since);
			snprintf(path, sizeof(path), "/proc/%d/stack", sh->pid[i]);
			f = fopen(path, "r");
			while (f && fgets(line, sizeof(line), f))
				printf("#   %s", line);
			if (f)
				fclose(f);
			sh->busy_since[i] = 0;
			if (!hung++ && !dumped) {
				dumped = 1;
				dump_tasks();
			}
		}
	}
	return hung;
}

static void print_progress(long start)
{
	printf("# %lds: %ld constructions (%ld keys), %ld agent restarts, %ld reloads, slowest %ld ms\n",
	       (now_ms() - start) / 1000, sh->done, sh->ok, sh->restarts, sh->reloads, sh->max_ms);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	int groups = 4, requesters = 3, opt, i, n, hung = 0, stopped_clean = 1;
	long limit = 2000, duration = 30, start, last, stopped;
	char before[4096], after[4096], params[64];
	pid_t group_pids[MAX_GROUPS], cycler;
	uint64_t seed = 0;

	while ((opt = getopt(argc, argv, "n:d:g:r:s:KRv")) != -1) {
		switch (opt) {
		case 'n': limit = atol(optarg); break;
		case 'd': duration = atol(optarg); break;
		case 'g': groups = atoi(optarg); break;
		case 'r': requesters = atoi(optarg); break;
		case 's': seed = strtoull(optarg, NULL, 0); break;
		case 'K': no_kills = 1; break;
		case 'R': no_reloads = 1; break;
		case 'v': verbose = 1; break;
		default:
			fprintf(stderr, "usage: keyagent_stress_test [-n N] [-d SECONDS] [-g GROUPS] "
					"[-r REQUESTERS] [-s SEED] [-K] [-R] [-v]\n");
			return 2;
		}
	}
	if (groups < 1 || groups > MAX_GROUPS || requesters < 1 || requesters > MAX_REQUESTERS ||
	    (!limit && !duration))
		return 2;
	if (!seed)
		seed = ((uint64_t)time(NULL) << 16) ^ getpid();

	ksft_print_header();
	ksft_set_plan(5);
	printf("# %ld constructions%s, %d groups x (a pool of %d agents + %d requesters), seed %llu\n",
	       limit, duration ? " at most" : "", groups, MEMBERS, requesters,
	       (unsigned long long)seed);
	if (duration)
		printf("# time limit %ld s\n", duration);
	if (getuid() != 0)
		ksft_exit_skip("needs root\n");
	snprintf(params, sizeof(params), "request_timeout=%d", TIMEOUT_S);
	if (!module_loaded() && load_module(params) != 0)
		ksft_exit_skip("keyagent module not loaded and cannot be loaded\n");
	snprintf(params + 32, 16, "%d", TIMEOUT_S);
	param_set("request_timeout", params + 32);

	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		ksft_exit_fail_msg("mmap: %s\n", strerror(errno));
	memset(sh, 0, sizeof(*sh));
	sh->limit = limit;

	/* root's user keyrings are made on first use and stay: make them now. */
	keyctl_get_keyring_ID(KEY_SPEC_USER_KEYRING, 1);
	keyctl_get_keyring_ID(KEY_SPEC_USER_SESSION_KEYRING, 1);
	settled_key_users_text(before, sizeof(before));
	printf("# /proc/key-users before:\n");
	for (char *l = strtok(strdup(before), "\n"); l; l = strtok(NULL, "\n"))
		printf("#   %s\n", l);
	fflush(stdout);

	cycler = no_reloads ? 0 : fork();
	if (cycler == 0 && !no_reloads)
		cycler_main(next(&seed));
	for (i = 0; i < groups; i++) {
		uint64_t s = next(&seed);

		group_pids[i] = fork();
		if (group_pids[i] == 0)
			group_main(i, requesters, s);
	}

	start = last = now_ms();
	while (!(limit && sh->done >= limit) && !(duration && now_ms() - start >= duration * 1000)) {
		sleep_ms(200);
		hung += watchdog(groups);
		if (now_ms() - last >= 10000) {
			print_progress(start);
			last = now_ms();
		}
	}
	/* Everyone finishes the request in hand, still watched. */
	sh->stop = 1;
	stopped = now_ms();
	for (;;) {
		int running = 0;

		for (i = 0; i < groups; i++)
			if (group_pids[i] > 0) {
				if (waitpid(group_pids[i], NULL, WNOHANG) == group_pids[i])
					group_pids[i] = 0;
				else
					running++;
			}
		if (!running)
			break;
		hung += watchdog(groups);
		if (now_ms() - stopped > LIMIT_MS + WAIT_MS) {
			printf("# %d groups did not stop\n", running);
			stopped_clean = 0;
			break;
		}
		sleep_ms(200);
	}
	if (cycler > 0)
		waitpid(cycler, NULL, 0);
	print_progress(start);

	printf("# results: %ld keys;", sh->ok);
	for (i = 0; i < 150; i++)
		if (sh->errors[i])
			printf(" %s %ld;", strerrorname_np(i), sh->errors[i]);
	printf(" %ld agent restarts (%ld with no agent for a moment), %ld reloads, %ld unloads refused for 10 s\n",
	       sh->restarts, sh->hard_kills, sh->reloads, sh->unload_busy);
	sh->unloading = 1;
	n = unload_module(WAIT_MS);
	printf("# module counters:");
	for (i = 0; i < NCOUNTERS; i++)
		printf(" %s %ld", counter_names[i], sh->counters[i]);
	printf("\n");

	/* counters[1]: constructions the agents answered, summed over module loads. */
	if (sh->ok == 0 || sh->counters[1] == 0)
		ksft_test_result_fail("%ld keys made, %ld answered by agents: nothing was stressed\n",
				      sh->ok, sh->counters[1]);
	else if (limit && sh->done < limit)
		ksft_test_result_pass("%ld of %ld constructions in %ld s (time limit), %ld by agents\n",
				      sh->done, limit, (now_ms() - start) / 1000, sh->counters[1]);
	else
		ksft_test_result_pass("%ld constructions in %ld s, %ld by agents\n", sh->done,
				      (now_ms() - start) / 1000, sh->counters[1]);
	if (sh->unexpected)
		ksft_test_result_fail("%ld requests failed with an unexpected error\n", sh->unexpected);
	else
		ksft_test_result_pass("every request ended with a key or a documented error\n");
	if (hung || !stopped_clean)
		ksft_test_result_fail("%d requests blocked longer than %d ms%s\n", hung, LIMIT_MS,
				      stopped_clean ? "" : ", requesters did not stop");
	else
		ksft_test_result_pass("no request blocked longer than %d ms (slowest %ld ms)\n",
				      LIMIT_MS, sh->max_ms);
	if (n == 0)
		ksft_test_result_pass("module unloads after the run\n");
	else
		ksft_test_result_fail("module does not unload: %s\n", strerror(-n));
	load_module("");

	/* Back to the baseline once the garbage collector has caught up. */
	wait_for(key_users_text(after, sizeof(after)) == 0 && strcmp(before, after) == 0, WAIT_MS);
	if (strcmp(before, after) == 0) {
		ksft_test_result_pass("/proc/key-users back to its baseline\n");
	} else {
		printf("# /proc/key-users after:\n");
		for (char *l = strtok(after, "\n"); l; l = strtok(NULL, "\n"))
			printf("#   %s\n", l);
		ksft_test_result_fail("/proc/key-users differs from its baseline\n");
	}
	ksft_finished();
}
