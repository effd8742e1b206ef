// SPDX-License-Identifier: GPL-2.0
/* How far apart two CPUs are: the round trip of a cache line between a thread pinned on each.
 *
 *   corepair --cpus A,B [--bounces N] [--blocks K] [--fifo]
 *
 * Thread A writes a sequence number, thread B echoes it on another line, A waits for the echo: one
 * round trip is two line transfers. Prints one JSON line {"roundTripNs": median over K blocks of N
 * bounces, "blocks": [...]}. Why: on a VM the host may run the two vCPUs on cores of one L3 slice
 * or across dies (here ~110 ns against ~500 ns a round trip, changing every few seconds), and every
 * benchmark that passes frames between the generator's CPU and the forwarder's runs at two speeds
 * accordingly. --fifo runs both threads SCHED_FIFO (priority 1), so a probe taken while a busy-polling
 * forwarder holds a CPU measures the line, not the wait for the forwarder's time slice; each thread
 * gives up after 200 ms without an answer, so a probe never holds a CPU longer than that. */
#define _GNU_SOURCE /* pthread_setaffinity_np, CPU_SET */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_BLOCKS 64
#define GIVE_UP_NS 200000000ULL

/* The two words on separate cache lines (and separate 128-byte prefetch pairs). */
static struct {
	_Alignas(128) _Atomic long ping;
	_Alignas(128) _Atomic long pong;
	_Alignas(128) _Atomic int ready;
	_Atomic int failed;
} shared;

static long bounces = 20000;
static int blocks = 5;
static int fifo;
static double block_ns[MAX_BLOCKS];

static unsigned long long now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (unsigned long long)ts.tv_sec * 1000000000ULL + (unsigned long long)ts.tv_nsec;
}

static int pin(int cpu)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	int err = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	if (err) {
		fprintf(stderr, "corepair: cannot pin a thread to CPU %d: %s\n", cpu, strerror(err));
		return -1;
	}
	return 0;
}

/* SCHED_FIFO with --fifo. Only once the other thread runs where it should: a real-time thread that
 * spins keeps a normal one off its CPU, and a new thread starts on its creator's CPU. */
static int make_fifo(int cpu)
{
	if (fifo) {
		int err;
		struct sched_param param = { .sched_priority = 1 };
		err = pthread_setschedparam(pthread_self(), SCHED_FIFO, &param);
		if (err) {
			fprintf(stderr, "corepair: cannot make the thread on CPU %d SCHED_FIFO: %s\n", cpu, strerror(err));
			return -1;
		}
	}
	return 0;
}

/* Spins until *word == value; 0, or -1 after GIVE_UP_NS or when the other side failed. */
static int await_value(_Atomic long *word, long value)
{
	unsigned long long start = 0;
	for (unsigned spins = 0;; spins++) {
		if (atomic_load_explicit(word, memory_order_acquire) == value) return 0;
		if ((spins & 1023) == 1023) {
			if (atomic_load_explicit(&shared.failed, memory_order_relaxed)) return -1;
			unsigned long long t = now_ns();
			if (start == 0) start = t;
			else if (t - start > GIVE_UP_NS) return -1;
		}
	}
}

static void *echo(void *arg)
{
	int cpu = *(int *)arg;
	if (pin(cpu) < 0 || make_fifo(cpu) < 0) {
		atomic_store(&shared.failed, 1);
		return NULL;
	}
	atomic_store(&shared.ready, 1);
	long total = bounces * blocks;
	for (long i = 1; i <= total; i++) {
		if (await_value(&shared.ping, i) < 0) {
			atomic_store(&shared.failed, 1);
			return NULL;
		}
		atomic_store_explicit(&shared.pong, i, memory_order_release);
	}
	return NULL;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void usage(void)
{
	fprintf(stderr, "usage: corepair --cpus A,B [--bounces N] [--blocks K (1-%d)] [--fifo]\n", MAX_BLOCKS);
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
		{ "cpus", required_argument, NULL, 'c' },
		{ "bounces", required_argument, NULL, 'n' },
		{ "blocks", required_argument, NULL, 'k' },
		{ "fifo", no_argument, NULL, 'f' },
		{ 0 },
	};
	int cpu_a = -1, cpu_b = -1, opt;
	while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (opt) {
		case 'c':
			if (sscanf(optarg, "%d,%d", &cpu_a, &cpu_b) != 2 || cpu_a < 0 || cpu_b < 0 || cpu_a == cpu_b) usage();
			break;
		case 'n':
			bounces = strtol(optarg, NULL, 10);
			if (bounces < 1 || bounces > 100000000) usage();
			break;
		case 'k':
			blocks = atoi(optarg);
			if (blocks < 1 || blocks > MAX_BLOCKS) usage();
			break;
		case 'f':
			fifo = 1;
			break;
		default:
			usage();
		}
	}
	if (cpu_a < 0) usage();

	/* This thread moves to A first, so the echo thread (started on its creator's CPU) can always
	 * run to move itself to B; this one spins as real-time only once that one is there. */
	if (pin(cpu_a) < 0) return 1;
	pthread_t thread;
	if (pthread_create(&thread, NULL, echo, &cpu_b) != 0) {
		fprintf(stderr, "corepair: cannot start a thread: %s\n", strerror(errno));
		return 1;
	}
	int failed = 0;
	unsigned long long waited = now_ns();
	struct timespec pause = { 0, 50000 };
	while (!atomic_load(&shared.ready)) {
		if (atomic_load(&shared.failed) || now_ns() - waited > GIVE_UP_NS) {
			failed = 1;
			break;
		}
		nanosleep(&pause, NULL);
	}
	if (!failed && make_fifo(cpu_a) < 0) failed = 1;
	long seq = 0;
	for (int b = 0; b < blocks && !failed; b++) {
		unsigned long long start = now_ns();
		for (long i = 0; i < bounces; i++) {
			atomic_store_explicit(&shared.ping, ++seq, memory_order_release);
			if (await_value(&shared.pong, seq) < 0) {
				failed = 1;
				break;
			}
		}
		block_ns[b] = (double)(now_ns() - start) / (double)bounces;
	}
	if (failed) {
		atomic_store(&shared.failed, 1);
		pthread_join(thread, NULL);
		fprintf(stderr, "corepair: no round trip between CPU %d and CPU %d within %llu ms\n", cpu_a, cpu_b, GIVE_UP_NS / 1000000ULL);
		return 1;
	}
	pthread_join(thread, NULL);
	double sorted[MAX_BLOCKS];
	memcpy(sorted, block_ns, sizeof(double) * (size_t)blocks);
	qsort(sorted, (size_t)blocks, sizeof(double), cmp_double);
	printf("{\"cpus\":[%d,%d],\"roundTripNs\":%.1f,\"blocks\":[", cpu_a, cpu_b, sorted[blocks / 2]);
	for (int b = 0; b < blocks; b++) printf("%s%.1f", b ? "," : "", block_ns[b]);
	printf("]}\n");
	return 0;
}
