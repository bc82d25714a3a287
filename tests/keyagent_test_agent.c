// SPDX-License-Identifier: GPL-2.0
/*
 * A small keyagent agent for tests and the demo.
 *
 * Registers for one key type, prints the serial of its keyagent key on stdout
 * (the "ready" line), then answers each request it is signalled:
 *
 *	callout "reject:N"	reject the key with error N
 *	callout "negate"	negate the key
 *	anything else		instantiate the key with "agent:<callout>"
 *
 * Knobs for fault tests: -i ignore requests, -b never read signals (they stay
 * queued), -d die (SIGKILL itself) on the first request, -w MS wait before
 * answering, -n N exit after N requests, -P PERM set the permissions of the
 * keyagent key, -l FILE append one line per request ("serial code pid uid")
 * to FILE. -S SCOPE registers with that scope word ("40 net"), -A NAME
 * answers "NAME:<callout>" instead of "agent:<callout>".
 */
#include <errno.h>
#include <keyutils.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "../include/keyagent.h"

static void usage(void)
{
	fprintf(stderr,
		"usage: keyagent-test-agent [-t TYPE] [-s SIGNAL] [-k KEYRING] [-S SCOPE] [-A NAME]\n"
		"                           [-i] [-b] [-d] [-w MS] [-n N] [-P PERM] [-l FILE]\n");
	exit(2);
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static const char *answer_name = "agent", *key_type = "user";

/* Answers the construction of @target as its callout says. */
static void answer(key_serial_t target)
{
	char *callout = NULL;
	char payload[512];
	long len;

	if (keyctl_assume_authority(target) < 0) {
		fprintf(stderr, "agent: assume_authority(%d): %m\n", target);
		return;
	}
	len = keyctl_read_alloc(KEY_SPEC_REQKEY_AUTH_KEY, (void **)&callout);
	if (len < 0) {
		fprintf(stderr, "agent: reading callout of %d: %m\n", target);
		keyctl_assume_authority(0);
		return;
	}
	if (strncmp(callout, "reject:", 7) == 0) {
		if (keyctl_reject(target, 1, atoi(callout + 7), 0) < 0)
			fprintf(stderr, "agent: reject(%d): %m\n", target);
	} else if (strcmp(callout, "negate") == 0) {
		if (keyctl_negate(target, 1, 0) < 0)
			fprintf(stderr, "agent: negate(%d): %m\n", target);
	} else {
		len = snprintf(payload, sizeof(payload), "%s:%s", answer_name, callout);
		/* dns_resolver payloads are C strings, NUL included. */
		if (strcmp(key_type, "dns_resolver") == 0)
			len++;
		if (keyctl_instantiate(target, payload, len, 0) < 0)
			fprintf(stderr, "agent: instantiate(%d): %m\n", target);
	}
	free(callout);
	keyctl_assume_authority(0);
}

int main(int argc, char **argv)
{
	const char *log_path = NULL, *scope = NULL;
	key_serial_t keyring = KEY_SPEC_SESSION_KEYRING, agent_key;
	int sig = 40, ignore = 0, block = 0, die = 0, opt, sfd;
	long perm = -1;
	long wait_ms = 0, limit = -1, handled = 0;
	struct signalfd_siginfo ssi;
	char sigstr[32];
	sigset_t set;

	while ((opt = getopt(argc, argv, "t:s:k:ibdw:n:P:l:S:A:")) != -1) {
		switch (opt) {
		case 't': key_type = optarg; break;
		case 's': sig = atoi(optarg); break;
		case 'k': keyring = atoi(optarg); break;
		case 'i': ignore = 1; break;
		case 'b': block = 1; break;
		case 'd': die = 1; break;
		case 'P': perm = strtol(optarg, NULL, 0); break;
		case 'w': wait_ms = atol(optarg); break;
		case 'n': limit = atol(optarg); break;
		case 'l': log_path = optarg; break;
		case 'S': scope = optarg; break;
		case 'A': answer_name = optarg; break;
		default: usage();
		}
	}

	sigemptyset(&set);
	sigaddset(&set, sig);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0) {
		perror("agent: sigprocmask");
		return 1;
	}
	sfd = signalfd(-1, &set, SFD_CLOEXEC);
	if (sfd < 0) {
		perror("agent: signalfd");
		return 1;
	}

	if (scope)
		snprintf(sigstr, sizeof(sigstr), "%d %s", sig, scope);
	else
		snprintf(sigstr, sizeof(sigstr), "%d", sig);
	agent_key = add_key(KEYAGENT_KEY_TYPE, key_type, sigstr, strlen(sigstr), keyring);
	if (agent_key < 0) {
		fprintf(stderr, "agent: add_key(keyagent, %s, \"%s\"): %m\n", key_type, sigstr);
		return 1;
	}
	if (perm >= 0 && keyctl_setperm(agent_key, perm) < 0) {
		fprintf(stderr, "agent: setperm(%d): %m\n", agent_key);
		return 1;
	}
	printf("%d\n", agent_key);
	fflush(stdout);
	if (block)
		for (;;)
			pause();

	while (limit < 0 || handled < limit) {
		if (read(sfd, &ssi, sizeof(ssi)) != sizeof(ssi)) {
			if (errno == EINTR)
				continue;
			perror("agent: read signalfd");
			return 1;
		}
		if (log_path) {
			FILE *f = fopen(log_path, "a");

			if (f) {
				fprintf(f, "%d %d %u %u\n", ssi.ssi_int, ssi.ssi_code,
					ssi.ssi_pid, ssi.ssi_uid);
				fclose(f);
			}
		}
		handled++;
		if (ssi.ssi_code != KEYAGENT_SI_CODE)
			continue;
		if (die)
			raise(SIGKILL);
		if (ignore)
			continue;
		if (wait_ms)
			sleep_ms(wait_ms);
		answer(ssi.ssi_int);
	}
	return 0;
}
