// SPDX-License-Identifier: GPL-2.0
/*
 * Has the kernel look a name up through the test caller module, in the
 * caller's namespaces, and prints the answer, or "-ERRNO":
 *
 *	keyagent-test-kquery FILE NAME
 *
 * FILE is dns_query, dns_query_kthread, request or request_kthread (see
 * tests/kmod/keyagent_test_caller.c). Exit status 0 for an answer, 1 for an
 * error.
 */
#include "keyagent_util.h"

int main(int argc, char **argv)
{
	char buf[512];
	long n;

	if (argc != 3) {
		fprintf(stderr, "usage: keyagent-test-kquery FILE NAME\n");
		return 2;
	}
	n = kernel_query(argv[1], argv[2], buf, sizeof(buf));
	if (n < 0) {
		printf("%ld\n", n);
		return 1;
	}
	printf("%s\n", buf);
	return 0;
}
