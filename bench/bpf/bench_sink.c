// SPDX-License-Identifier: GPL-2.0
/* Counting sink: counts every frame and its bytes, and for frames that carry the generator's stamp
 * (bench_stamp.h, after Ethernet + IPv4 without options + UDP) checks the sequence per generator and
 * adds now - sent to a latency histogram; then drops the frame.
 *
 * Sequence: a stamp equal to the next expected one is in order; a higher one counts the skipped
 * numbers as gaps (lost, or reordered and still to come); a lower one counts as late (reordered or
 * duplicated). The expected numbers are shared between CPUs: exact when one CPU receives a
 * generator's frames (a single forwarder), approximate otherwise.
 *
 * Histogram (nanoseconds, log-linear, 16 buckets per power of two, about 6% wide):
 *   v < 16: bucket v; else with e = floor(log2 v): 16 + (e - 4) * 16 + ((v >> (e - 4)) & 15),
 *   the last bucket taking everything from 2^40 ns up. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "bench_stamp.h"

enum { SINK_PACKETS = 0, SINK_BYTES = 1, SINK_STAMPED = 2, SINK_IN_ORDER = 3, SINK_GAPS = 4, SINK_LATE = 5, SINK_MAX = 6 };
#define LATENCY_BUCKETS (16 + 36 * 16)

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SINK_MAX);
	__type(key, __u32);
	__type(value, __u64);
} sink_counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, LATENCY_BUCKETS);
	__type(key, __u32);
	__type(value, __u64);
} sink_latency SEC(".maps");

/* Next expected sequence + 1 per generator (0: none seen yet). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, BENCH_GENERATORS);
	__type(key, __u32);
	__type(value, __u64);
} sink_expected SEC(".maps");

static __always_inline void add(__u32 key, __u64 amount)
{
	__u64 *counter = bpf_map_lookup_elem(&sink_counters, &key);

	if (counter)
		*counter += amount;
}

static __always_inline __u32 log2_u64(__u64 v)
{
	__u32 r = 0;

	if (v >> 32) { v >>= 32; r += 32; }
	if (v >> 16) { v >>= 16; r += 16; }
	if (v >> 8) { v >>= 8; r += 8; }
	if (v >> 4) { v >>= 4; r += 4; }
	if (v >> 2) { v >>= 2; r += 2; }
	if (v >> 1) r += 1;
	return r;
}

static __always_inline __u32 latency_bucket(__u64 ns)
{
	__u32 e;

	if (ns < 16)
		return (__u32)ns;
	e = log2_u64(ns);
	if (e >= 40)
		return LATENCY_BUCKETS - 1;
	return 16 + (e - 4) * 16 + (__u32)((ns >> (e - 4)) & 15);
}

static __always_inline void check_stamp(struct bench_stamp *stamp)
{
	__u32 generator = stamp->generator;
	__u64 sent, now = bpf_ktime_get_ns(), *expected, *bucket;
	__u32 index;

	__builtin_memcpy(&sent, &stamp->sent_ns, sizeof(sent));
	add(SINK_STAMPED, 1);
	index = latency_bucket(now > sent ? now - sent : 0);
	bucket = bpf_map_lookup_elem(&sink_latency, &index);
	if (bucket)
		*bucket += 1;
	expected = bpf_map_lookup_elem(&sink_expected, &generator);
	if (!expected)
		return;
	if (*expected == 0 || stamp->sequence == (__u32)(*expected - 1)) {
		add(SINK_IN_ORDER, 1);
	} else if ((__s32)(stamp->sequence - (__u32)(*expected - 1)) > 0) {
		add(SINK_GAPS, stamp->sequence - (__u32)(*expected - 1));
	} else {
		add(SINK_LATE, 1);
		return;
	}
	*expected = (__u64)stamp->sequence + 2;
}

SEC("xdp")
int bench_sink(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct udphdr *udp = (void *)(ip + 1);
	struct bench_stamp *stamp = (void *)(udp + 1);

	add(SINK_PACKETS, 1);
	add(SINK_BYTES, data_end - data);
	if ((void *)(stamp + 1) <= data_end && eth->h_proto == bpf_htons(ETH_P_IP) && ip->ihl == 5 &&
	    ip->protocol == 17 /* UDP */ && stamp->magic == BENCH_STAMP_MAGIC)
		check_stamp(stamp);
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
