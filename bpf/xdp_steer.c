// SPDX-License-Identifier: GPL-2.0
/* The datapath's XDP program: every frame of a queue that has an AF_XDP socket goes to that socket;
 * the rest is left to the kernel (XDP_PASS), so an interface keeps working for what xdp-ts does not own. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "steer.h"

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, STEER_MAX_QUEUES);
	__type(key, __u32);
	__type(value, __u32);
} xsks_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STEER_COUNTER_MAX);
	__type(key, __u32);
	__type(value, __u64);
} steer_counters SEC(".maps");

static __always_inline void count(__u32 which)
{
	__u64 *value = bpf_map_lookup_elem(&steer_counters, &which);

	if (value)
		*value += 1;
}

SEC("xdp")
int xdp_steer(struct xdp_md *ctx)
{
	__u32 queue = ctx->rx_queue_index;
	long action;

	/* The lookup on an XSKMAP from XDP returns the socket only when one is bound there. */
	if (!bpf_map_lookup_elem(&xsks_map, &queue)) {
		count(STEER_PASSED);
		return XDP_PASS;
	}
	action = bpf_redirect_map(&xsks_map, queue, XDP_PASS);
	count(action == XDP_REDIRECT ? STEER_REDIRECTED : STEER_ERRORS);
	return action;
}

char LICENSE[] SEC("license") = "GPL";
