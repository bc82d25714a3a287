// SPDX-License-Identifier: GPL-2.0
/*
 * The smallest useful channel agent, for the benchmarks: it answers every
 * construction with two system calls per batch, a blocking read(2) of the
 * records waiting on /dev/keyagent (as many as fit its buffer) and one
 * write(2) of the answers, and nothing else. The payload is always "ok".
 *
 *	keyagent-bench-chan-agent
 *
 * Registers its channel for "user" keys in the session keyring and prints
 * "user SERIAL" (its keyagent key) on stdout when ready.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <keyutils.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "keyagent.h"

/* Room for a batch of records: any 64 of the benchmarks' fit. */
#define READ_BUF (4 * KEYAGENT_REQUEST_MAX)
#define ANSWER_SIZE (sizeof(struct keyagent_answer) + KEYAGENT_RECORD_ALIGN)

/*
 * Writes the answers in one write(2). If one construction ended meanwhile
 * (ENOENT refuses the whole write) or the key type refused one (the write
 * stops before it), the others are answered one by one.
 */
static void answer(int fd, const char *out, size_t len)
{
	ssize_t n = len ? write(fd, out, len) : 0;
	size_t off;

	if (n == (ssize_t)len)
		return;
	for (off = n > 0 ? (size_t)n : 0; off < len; off += ANSWER_SIZE)
		if (write(fd, out + off, ANSWER_SIZE) < 0 && errno != ENOENT)
			perror("bench-chan-agent: write");
}

int main(void)
{
	static char in[READ_BUF], out[READ_BUF / sizeof(struct keyagent_request) * ANSWER_SIZE];
	key_serial_t agent_key;
	char payload[32];
	ssize_t n, pos;
	size_t len;
	int fd;

	fd = open(KEYAGENT_DEVICE, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		perror("bench-chan-agent: open " KEYAGENT_DEVICE);
		return 1;
	}
	snprintf(payload, sizeof(payload), "fd %d", fd);
	agent_key = add_key(KEYAGENT_KEY_TYPE, "user", payload, strlen(payload),
			    KEY_SPEC_SESSION_KEYRING);
	if (agent_key < 0) {
		perror("bench-chan-agent: add_key(keyagent, user)");
		return 1;
	}
	printf("user %d\n", agent_key);
	fflush(stdout);

	for (;;) {
		n = read(fd, in, sizeof(in));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			perror("bench-chan-agent: read");
			return 1;
		}
		len = 0;
		for (pos = 0; pos + (ssize_t)sizeof(struct keyagent_request) <= n;) {
			struct keyagent_request req;
			struct keyagent_answer ans = {
				.size = ANSWER_SIZE, .version = KEYAGENT_ABI_VERSION,
				.op = KEYAGENT_OP_INSTANTIATE, .payload_len = 2,
			};

			memcpy(&req, in + pos, sizeof(req));
			if (req.size < sizeof(req) || (size_t)pos + req.size > (size_t)n)
				break;
			ans.serial = req.serial;
			memcpy(out + len, &ans, sizeof(ans));
			memset(out + len + sizeof(ans), 0, KEYAGENT_RECORD_ALIGN);
			memcpy(out + len + sizeof(ans), "ok", 2);
			len += ANSWER_SIZE;
			pos += req.size;
		}
		answer(fd, out, len);
	}
}
