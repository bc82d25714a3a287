// SPDX-License-Identifier: GPL-2.0
/*
 * The smallest useful keyagent agent, for the benchmarks: it answers every
 * construction with two system calls, keyctl_assume_authority() and
 * keyctl_instantiate() (which also drops the authority again), and nothing
 * else. The payload is always "ok".
 *
 *	keyagent-bench-agent [SIGNAL]		(default 40)
 *
 * Registers for "user" keys in the session keyring and prints "user SERIAL"
 * (its keyagent key) on stdout when ready. Signals are read from a signalfd,
 * as many as are queued per read(2).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <keyutils.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "keyagent.h"

#define BATCH 64

int main(int argc, char **argv)
{
	struct signalfd_siginfo si[BATCH];
	int sig = argc > 1 ? atoi(argv[1]) : 40;
	key_serial_t agent_key;
	char sigstr[16];
	sigset_t set;
	ssize_t n;
	int sfd, i;

	sigemptyset(&set);
	sigaddset(&set, sig);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0) {
		perror("bench-agent: sigprocmask");
		return 1;
	}
	sfd = signalfd(-1, &set, SFD_CLOEXEC);
	if (sfd < 0) {
		perror("bench-agent: signalfd");
		return 1;
	}
	snprintf(sigstr, sizeof(sigstr), "%d", sig);
	agent_key = add_key(KEYAGENT_KEY_TYPE, "user", sigstr, strlen(sigstr),
			    KEY_SPEC_SESSION_KEYRING);
	if (agent_key < 0) {
		perror("bench-agent: add_key(keyagent, user)");
		return 1;
	}
	printf("user %d\n", agent_key);
	fflush(stdout);

	for (;;) {
		n = read(sfd, si, sizeof(si));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			perror("bench-agent: read signalfd");
			return 1;
		}
		for (i = 0; i < n / (ssize_t)sizeof(si[0]); i++) {
			key_serial_t target = si[i].ssi_int;

			if (si[i].ssi_code != KEYAGENT_SI_CODE)
				continue;
			if (keyctl_assume_authority(target) < 0)
				continue;
			/* On success the kernel drops the assumed authority. */
			if (keyctl_instantiate(target, "ok", 2, 0) < 0)
				keyctl_assume_authority(0);
		}
	}
}
