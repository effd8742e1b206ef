/* Shared between the XDP steering program and user space (addon, C reference forwarder). */
#ifndef XDP_TS_STEER_H
#define XDP_TS_STEER_H

/* Index of each per-CPU counter in the `steer_counters` array map. */
enum steer_counter {
	STEER_REDIRECTED = 0, /* handed to the AF_XDP socket of the rx queue */
	STEER_PASSED = 1,     /* no socket on this queue: left to the kernel stack */
	STEER_ERRORS = 2,     /* a socket was present but bpf_redirect_map refused */
	STEER_COUNTER_MAX = 3,
};

/* Upper bound on rx queues a port may have; the XSKMAP is sized to it. */
#define STEER_MAX_QUEUES 64

#endif
