// SPDX-License-Identifier: GPL-2.0
/*
 * A requester for the trust tests: request_key(2) of TYPE DESC with CALLOUT,
 * then prints the key's payload, or "-ERRNO" if the request failed.
 *
 *	keyagent-test-request [-s] TYPE DESC CALLOUT
 *
 * -s first becomes root entirely (all uids and gids 0, no supplementary
 * groups), as su and sudo do, and execs this program again without -s: the
 * request is then made by a fresh root image that kept the caller's session
 * keyring. The exit status is 0 when a key was returned, 1 when the request
 * failed and 2 on a usage or setup error.
 */
#include <errno.h>
#include <grp.h>
#include <keyutils.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	int become_root = 0, opt;
	long key, n;
	char buf[256];

	while ((opt = getopt(argc, argv, "s")) != -1) {
		switch (opt) {
		case 's': become_root = 1; break;
		default: return 2;
		}
	}
	if (argc - optind != 3) {
		fprintf(stderr, "usage: keyagent-test-request [-s] TYPE DESC CALLOUT\n");
		return 2;
	}
	if (become_root) {
		if (setgroups(0, NULL) || setresgid(0, 0, 0) || setresuid(0, 0, 0)) {
			perror("request: becoming root");
			return 2;
		}
		execl("/tests/keyagent-test-request", "keyagent-test-request",
		      argv[optind], argv[optind + 1], argv[optind + 2], (char *)NULL);
		perror("request: exec");
		return 2;
	}
	key = syscall(__NR_request_key, argv[optind], argv[optind + 1], argv[optind + 2], 0);
	if (key < 0) {
		printf("-%d\n", errno);
		return 1;
	}
	n = keyctl_read(key, buf, sizeof(buf) - 1);
	if (n < 0) {
		printf("-%d\n", errno);
		return 1;
	}
	buf[n < (long)sizeof(buf) - 1 ? n : (long)sizeof(buf) - 1] = 0;
	printf("%s\n", buf);
	return 0;
}
