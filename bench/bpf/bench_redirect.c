// SPDX-License-Identifier: GPL-2.0
/* The kernel-only ceiling: every frame is redirected in XDP to the interface in tx_port[0]. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} tx_port SEC(".maps");

SEC("xdp")
int bench_redirect(struct xdp_md *ctx)
{
	return bpf_redirect_map(&tx_port, 0, XDP_ABORTED);
}

char LICENSE[] SEC("license") = "GPL";
