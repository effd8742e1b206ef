/* SPDX-License-Identifier: GPL-2.0 */
/* The generator's stamp at the start of the UDP payload, read by the sink (same host, same clock). */
#ifndef BENCH_STAMP_H
#define BENCH_STAMP_H

#include <linux/types.h>

#define BENCH_STAMP_MAGIC 0xb7e5
/* Flow i of the flow space uses UDP source port base + i % 64512 and source address 10.0.(i / 64512).1. */
#define BENCH_PORTS_PER_ADDRESS 64512
/* Generators with their own sequence that one sink tells apart (the stamp's generator id). */
#define BENCH_GENERATORS 16

struct bench_stamp {
	__u16 magic;
	__u16 generator;
	__u32 sequence;
	__u64 sent_ns; /* unaligned in the frame: copy, do not dereference */
} __attribute__((packed));

#endif
