// SPDX-License-Identifier: GPL-2.0
/*
 * Construction latency, agent against /sbin/request-key, in one boot: the
 * time request_key(2) takes for a fresh description until the key is usable.
 * Reports the medians; asserts only the ratio (the debug kernel under TCG is
 * slow in absolute terms, but both paths pay that).
 */
#include "kselftest_harness.h"
#include "keyagent_util.h"

#define AGENT_SAMPLES 100
#define REQUEST_KEY_SAMPLES 10

static int cmp_long(const void *a, const void *b)
{
	long x = *(const long *)a, y = *(const long *)b;

	return (x > y) - (x < y);
}

/* Median latency in microseconds of @n requests with descriptions "@prefix-i". */
static long median_us(const char *prefix, int n, long *samples)
{
	struct timespec t0, t1;
	char desc[64], buf[64];
	long key;
	int i;

	for (i = 0; i < n; i++) {
		snprintf(desc, sizeof(desc), "%s-%d", prefix, i);
		clock_gettime(CLOCK_MONOTONIC, &t0);
		key = request("user", desc, "bench", 0);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		if (key < 0 || payload(key, buf, sizeof(buf)) < 0)
			return -1;
		samples[i] = (t1.tv_sec - t0.tv_sec) * 1000000 + (t1.tv_nsec - t0.tv_nsec) / 1000;
	}
	qsort(samples, n, sizeof(*samples), cmp_long);
	return samples[n / 2];
}

FIXTURE(latency) {
	struct agent agent;
};

FIXTURE_SETUP(latency)
{
	if (!module_loaded())
		SKIP(return, "keyagent module not loaded");
	ASSERT_LT(0, keyctl_join_session_keyring(NULL));
	self->agent.pid = 0;
}

FIXTURE_TEARDOWN(latency)
{
	agent_stop(&self->agent);
}

TEST_F_TIMEOUT(latency, agent_vs_request_key, 300)
{
	long agent_samples[AGENT_SAMPLES], rk_samples[REQUEST_KEY_SAMPLES];
	long agent_us, rk_us;

	/* /sbin/request-key first, while no agent is registered. */
	rk_us = median_us("latency-rk", REQUEST_KEY_SAMPLES, rk_samples);
	ASSERT_LT(0, rk_us);

	ASSERT_EQ(0, agent_start(&self->agent, NULL));
	agent_us = median_us("latency-agent", AGENT_SAMPLES, agent_samples);
	ASSERT_LT(0, agent_us);

	TH_LOG("median construction: agent %ld us (p90 %ld us), /sbin/request-key %ld us, ratio %.1fx",
	       agent_us, agent_samples[AGENT_SAMPLES * 9 / 10], rk_us,
	       (double)rk_us / agent_us);
	/* An agent saves a fork, an exec of request-key and of its handler. */
	ASSERT_LT(agent_us * 10, rk_us);
}

TEST_HARNESS_MAIN
