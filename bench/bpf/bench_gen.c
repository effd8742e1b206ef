// SPDX-License-Identifier: GPL-2.0
/* Traffic generator, run with BPF_PROG_TEST_RUN in live-frames mode (XDP_TX of a template frame).
 *
 * Each run that is due to send rewrites the template (Ethernet + IPv4 without options + UDP, checksum
 * 0) into frame `seq % flows` of the flow space, stamps the payload and returns XDP_TX:
 *   flow i: UDP source port base + i % 64512, IPv4 source 10.0.(i / 64512).1 (the template's third
 *           octet must be 0; the IPv4 checksum is rewritten from the template's, given in the config);
 *   payload: u16 magic, u16 generator id, u32 sequence, u64 bpf_ktime_get_ns() (all big-endian-free:
 *            host order, read back by bench_sink.c on the same host).
 * Live frames keep what the previous run wrote into a recycled page, so every field is written whole,
 * never updated incrementally.
 *
 * Rate limit: with an interval (picoseconds per frame) configured, a run that is not yet due returns
 * XDP_DROP (a cheap recycle) instead of sending; at most `burst` frames are sent back to back to catch
 * up after a pause (e.g. between two test runs). Sent and skipped runs are counted in gen_stats. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "bench_stamp.h"

enum {
	GEN_CFG_FLOWS = 0,
	GEN_CFG_BASE_PORT = 1,
	GEN_CFG_INTERVAL_PS = 2, /* 0: as fast as possible */
	GEN_CFG_BURST = 3,
	GEN_CFG_ID = 4,
	GEN_CFG_IP_CSUM = 5,     /* the template's IPv4 checksum (host order), 0: leave the address alone */
	GEN_CFG_MAX = 6,
};
enum { GEN_SENT = 0, GEN_SKIPPED = 1, GEN_STATS_MAX = 2 };
enum { GEN_STATE_SEQUENCE = 0, GEN_STATE_DUE_PS = 1, GEN_STATE_MAX = 2 };

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, GEN_CFG_MAX);
	__type(key, __u32);
	__type(value, __u32);
} gen_config SEC(".maps");

/* Shared, not per CPU: one sequence per generator even if the test run migrates. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, GEN_STATE_MAX);
	__type(key, __u32);
	__type(value, __u64);
} gen_state SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, GEN_STATS_MAX);
	__type(key, __u32);
	__type(value, __u64);
} gen_stats SEC(".maps");

static __always_inline __u32 config(__u32 key, __u32 fallback)
{
	__u32 *value = bpf_map_lookup_elem(&gen_config, &key);

	return value && *value ? *value : fallback;
}

static __always_inline void count(__u32 key)
{
	__u64 *counter = bpf_map_lookup_elem(&gen_stats, &key);

	if (counter)
		*counter += 1;
}

SEC("xdp")
int bench_gen(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct iphdr *ip = data + sizeof(struct ethhdr);
	struct udphdr *udp = (void *)(ip + 1);
	struct bench_stamp *stamp = (void *)(udp + 1);
	__u32 seq_key = GEN_STATE_SEQUENCE, due_key = GEN_STATE_DUE_PS;
	__u32 flows = config(GEN_CFG_FLOWS, 1), base = config(GEN_CFG_BASE_PORT, 1024);
	__u32 interval = config(GEN_CFG_INTERVAL_PS, 0), csum = config(GEN_CFG_IP_CSUM, 0);
	__u64 *sequence = bpf_map_lookup_elem(&gen_state, &seq_key);
	__u64 *due = bpf_map_lookup_elem(&gen_state, &due_key);
	__u64 now = bpf_ktime_get_ns(), flow, block;

	if (!sequence || !due || (void *)(stamp + 1) > data_end)
		return XDP_ABORTED;
	if (interval) {
		__u64 now_ps = now * 1000, slack = (__u64)config(GEN_CFG_BURST, 16) * interval;

		if (now_ps < *due) {
			count(GEN_SKIPPED);
			return XDP_DROP;
		}
		if (now_ps > *due + slack)
			*due = now_ps - slack;
		*due += interval;
	}
	flow = *sequence % flows;
	block = flow / BENCH_PORTS_PER_ADDRESS;
	udp->source = bpf_htons((__u16)(base + flow % BENCH_PORTS_PER_ADDRESS));
	if (csum) {
		/* Third octet of the source address = block; checksum from the template's (octet 0). */
		__u32 sum = (~csum & 0xffff) + ((__u32)(block & 0xff) << 8);

		sum = (sum & 0xffff) + (sum >> 16);
		((__u8 *)&ip->saddr)[2] = (__u8)block;
		ip->check = bpf_htons((__u16)~sum);
	}
	stamp->magic = BENCH_STAMP_MAGIC;
	stamp->generator = (__u16)config(GEN_CFG_ID, 0);
	stamp->sequence = (__u32)*sequence;
	__builtin_memcpy(&stamp->sent_ns, &now, sizeof(now));
	*sequence += 1;
	count(GEN_SENT);
	return XDP_TX;
}

char LICENSE[] SEC("license") = "GPL";
