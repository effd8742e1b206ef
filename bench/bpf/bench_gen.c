// SPDX-License-Identifier: GPL-2.0
/* Traffic generator, run with BPF_PROG_TEST_RUN in live-frames mode: every run transmits the template
 * frame (XDP_TX) after giving it the UDP source port of the next of `flows` flows, so the frames spread
 * over that many 5-tuples. The template must be Ethernet + IPv4 (no options) + UDP, checksum 0. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

enum { GEN_CFG_FLOWS = 0, GEN_CFG_BASE_PORT = 1, GEN_CFG_MAX = 2 };

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, GEN_CFG_MAX);
	__type(key, __u32);
	__type(value, __u32);
} gen_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} gen_sequence SEC(".maps");

static __always_inline __u32 config(__u32 key, __u32 fallback)
{
	__u32 *value = bpf_map_lookup_elem(&gen_config, &key);

	return value && *value ? *value : fallback;
}

SEC("xdp")
int bench_gen(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct udphdr *udp = data + sizeof(struct ethhdr) + sizeof(struct iphdr);
	__u32 zero = 0, flows = config(GEN_CFG_FLOWS, 1), base = config(GEN_CFG_BASE_PORT, 1024);
	__u64 *sequence = bpf_map_lookup_elem(&gen_sequence, &zero);

	if (!sequence || (void *)(udp + 1) > data_end)
		return XDP_ABORTED;
	udp->source = bpf_htons((__u16)(base + (*sequence % flows)));
	*sequence += 1;
	return XDP_TX;
}

char LICENSE[] SEC("license") = "GPL";
