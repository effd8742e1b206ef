// SPDX-License-Identifier: GPL-2.0
/* Counting sink: counts every frame and its bytes per CPU, then drops it. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

enum { SINK_PACKETS = 0, SINK_BYTES = 1, SINK_MAX = 2 };

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SINK_MAX);
	__type(key, __u32);
	__type(value, __u64);
} sink_counters SEC(".maps");

SEC("xdp")
int bench_sink(struct xdp_md *ctx)
{
	__u32 packets = SINK_PACKETS, bytes = SINK_BYTES;
	__u64 *count = bpf_map_lookup_elem(&sink_counters, &packets);
	__u64 *octets = bpf_map_lookup_elem(&sink_counters, &bytes);

	if (count)
		*count += 1;
	if (octets)
		*octets += ctx->data_end - ctx->data;
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
