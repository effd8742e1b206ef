// SPDX-License-Identifier: GPL-2.0
/* Reference AF_XDP forwarder for the benchmarks: the raw kernel API (no libxdp), one UMEM shared by a
 * socket on --in and one on --out, a busy-polling loop moving descriptors from one rx ring to the other
 * socket's tx ring without touching packet data. It measures what AF_XDP itself allows on this host. */
#define _GNU_SOURCE /* sched_setaffinity, CPU_SET */
#include <errno.h>
#include <getopt.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <linux/if_link.h>
#include <linux/if_xdp.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

struct ring {
	__u32 *prod, *cons, *flags, mask;
	void *descs; /* struct xdp_desc[] for rx/tx, __u64[] for fill/completion */
	void *map;
	size_t map_len;
};

struct xsk {
	const char *ifname;
	int ifindex, fd, link;
	struct bpf_object *obj;
	struct ring rx, tx, fq, cq;
};

static struct {
	unsigned queue, ring, frames, frame_size, batch, duration;
	int cpu;
	bool bidir, generic;
	const char *obj;
} cfg = { .ring = 2048, .frames = 8192, .frame_size = 4096, .batch = 64, .cpu = -1,
	  .obj = "build/bpf/xdp_steer.o" };

static struct xsk in = { .fd = -1, .link = -1 }, out = { .fd = -1, .link = -1 };
static void *umem;
static __u64 *free_stack; /* frames owned by user space, not in any ring */
static unsigned nfree;
static __u64 rx_packets, tx_packets, tx_dropped;
static volatile sig_atomic_t stop;

/* Every failure: name the operation, detach what is attached (the links would go with the process
 * anyway, but say so explicitly) and exit 1. */
static void __attribute__((noreturn, format(printf, 1, 2))) die(const char *fmt, ...)
{
	int err = errno;
	va_list ap;

	fputs("xsk_fwd: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, ": %s\n", strerror(err));
	close(in.link); /* -1 when not attached yet: harmless EBADF */
	close(out.link);
	exit(1);
}

/* Consumer side (rx, completion): entries the kernel produced, at most max; *idx is the first. */
static __u32 ring_avail(struct ring *r, __u32 max, __u32 *idx)
{
	__u32 n = __atomic_load_n(r->prod, __ATOMIC_ACQUIRE) - (*idx = *r->cons);

	return n < max ? n : max;
}

/* Producer side (tx, fill): free slots, at most max; *idx is the first. */
static __u32 ring_room(struct ring *r, __u32 max, __u32 *idx)
{
	__u32 n = r->mask + 1 - ((*idx = *r->prod) - __atomic_load_n(r->cons, __ATOMIC_ACQUIRE));

	return n < max ? n : max;
}

/* Publishes our own index (consumer of rx/completion, producer of tx/fill) after the descriptors. */
static void ring_advance(__u32 *own, __u32 n)
{
	__atomic_store_n(own, *own + n, __ATOMIC_RELEASE);
}

static void free_push(__u64 addr)
{
	/* rx/completion addresses point at the data (chunk + headroom); keep the chunk start */
	free_stack[nfree++] = addr & ~(__u64)(cfg.frame_size - 1);
}

static void ring_map(struct xsk *x, struct ring *r, const struct xdp_ring_offset *off, __u64 pgoff,
		     size_t desc_size)
{
	r->map_len = off->desc + (size_t)cfg.ring * desc_size;
	r->map = mmap(NULL, r->map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, x->fd, pgoff);
	if (r->map == MAP_FAILED)
		die("mmap ring %s queue %u", x->ifname, cfg.queue);
	r->prod = (__u32 *)((char *)r->map + off->producer);
	r->cons = (__u32 *)((char *)r->map + off->consumer);
	r->flags = (__u32 *)((char *)r->map + off->flags);
	r->descs = (char *)r->map + off->desc;
	r->mask = cfg.ring - 1;
}

static void xsk_close(struct xsk *x)
{
	struct ring *rings[] = { &x->rx, &x->tx, &x->fq, &x->cq };

	for (unsigned i = 0; i < 4; i++)
		if (rings[i]->map) {
			munmap(rings[i]->map, rings[i]->map_len);
			rings[i]->map = NULL;
		}
	if (x->fd >= 0)
		close(x->fd);
	x->fd = -1;
}

/* Creates, maps and binds one socket. shared_fd < 0: this socket registers the UMEM. Every socket gets
 * its own fill/completion rings (required when sharing a UMEM across devices). Returns -1 with errno
 * only when bind fails, so the caller can fall back from zero-copy to copy mode. */
static int xsk_open(struct xsk *x, int shared_fd, __u16 bind_flags)
{
	struct xdp_umem_reg reg = { .addr = (__u64)(unsigned long)umem,
				    .len = (__u64)cfg.frames * cfg.frame_size, .chunk_size = cfg.frame_size };
	struct sockaddr_xdp sxdp = { .sxdp_family = AF_XDP, .sxdp_ifindex = x->ifindex,
				     .sxdp_queue_id = cfg.queue, .sxdp_flags = bind_flags };
	struct xdp_mmap_offsets off;
	socklen_t len = sizeof(off);
	int ring = cfg.ring;

	x->fd = socket(AF_XDP, SOCK_RAW, 0);
	if (x->fd < 0)
		die("socket %s queue %u", x->ifname, cfg.queue);
	if (shared_fd < 0 && setsockopt(x->fd, SOL_XDP, XDP_UMEM_REG, &reg, sizeof(reg)))
		die("XDP_UMEM_REG %s queue %u", x->ifname, cfg.queue);
	if (setsockopt(x->fd, SOL_XDP, XDP_UMEM_FILL_RING, &ring, sizeof(ring)) ||
	    setsockopt(x->fd, SOL_XDP, XDP_UMEM_COMPLETION_RING, &ring, sizeof(ring)) ||
	    setsockopt(x->fd, SOL_XDP, XDP_RX_RING, &ring, sizeof(ring)) ||
	    setsockopt(x->fd, SOL_XDP, XDP_TX_RING, &ring, sizeof(ring)))
		die("setsockopt rings %s queue %u", x->ifname, cfg.queue);
	if (getsockopt(x->fd, SOL_XDP, XDP_MMAP_OFFSETS, &off, &len))
		die("XDP_MMAP_OFFSETS %s queue %u", x->ifname, cfg.queue);
	ring_map(x, &x->rx, &off.rx, XDP_PGOFF_RX_RING, sizeof(struct xdp_desc));
	ring_map(x, &x->tx, &off.tx, XDP_PGOFF_TX_RING, sizeof(struct xdp_desc));
	ring_map(x, &x->fq, &off.fr, XDP_UMEM_PGOFF_FILL_RING, sizeof(__u64));
	ring_map(x, &x->cq, &off.cr, XDP_UMEM_PGOFF_COMPLETION_RING, sizeof(__u64));
	if (shared_fd >= 0) {
		sxdp.sxdp_flags = XDP_SHARED_UMEM; /* no other flag allowed: the UMEM owner's mode applies */
		sxdp.sxdp_shared_umem_fd = shared_fd;
	}
	return bind(x->fd, (struct sockaddr *)&sxdp, sizeof(sxdp)) ? -1 : 0;
}

/* One XDP object per interface, so that each gets its own xsks_map; the socket goes in before attach. */
static void attach(struct xsk *x)
{
	LIBBPF_OPTS(bpf_link_create_opts, opts, .flags = cfg.generic ? XDP_FLAGS_SKB_MODE : XDP_FLAGS_DRV_MODE);
	struct bpf_program *prog;
	__u32 key = cfg.queue;
	int map_fd;

	x->obj = bpf_object__open_file(cfg.obj, NULL);
	if (!x->obj)
		die("open %s for %s queue %u", cfg.obj, x->ifname, cfg.queue);
	if (bpf_object__load(x->obj))
		die("load %s for %s queue %u", cfg.obj, x->ifname, cfg.queue);
	map_fd = bpf_object__find_map_fd_by_name(x->obj, "xsks_map");
	if (map_fd < 0 || bpf_map_update_elem(map_fd, &key, &x->fd, BPF_ANY))
		die("xsks_map update %s queue %u", x->ifname, cfg.queue);
	prog = bpf_object__find_program_by_name(x->obj, "xdp_steer");
	if (!prog)
		die("find program xdp_steer %s queue %u", x->ifname, cfg.queue);
	x->link = bpf_link_create(bpf_program__fd(prog), x->ifindex, BPF_XDP, &opts);
	if (x->link < 0)
		die("attach xdp %s queue %u", x->ifname, cfg.queue);
}

/* Moves up to --batch rx descriptors of src to dst's tx ring (dst NULL: just recycle the frames). */
static void forward(struct xsk *src, struct xsk *dst)
{
	__u32 ri, ti = 0, room = 0, n = ring_avail(&src->rx, cfg.batch, &ri);
	struct xdp_desc *rxd = src->rx.descs, *txd = dst ? dst->tx.descs : NULL;

	if (!n)
		return;
	if (dst)
		room = ring_room(&dst->tx, n, &ti);
	for (__u32 i = 0; i < n; i++) {
		struct xdp_desc *d = &rxd[(ri + i) & src->rx.mask];

		if (i < room) /* the frame changes owner (rx -> tx): only addr/len are copied */
			txd[(ti + i) & dst->tx.mask] = (struct xdp_desc){ .addr = d->addr, .len = d->len };
		else
			free_push(d->addr);
	}
	ring_advance(src->rx.cons, n);
	if (!dst)
		return;
	ring_advance(dst->tx.prod, room);
	rx_packets += n;
	tx_dropped += n - room;
}

/* Kicks tx while descriptors wait (copy mode: always flagged, and each sendto sends at most 32). */
static void kick_tx(struct xsk *x)
{
	if (!(__atomic_load_n(x->tx.flags, __ATOMIC_RELAXED) & XDP_RING_NEED_WAKEUP) ||
	    __atomic_load_n(x->tx.cons, __ATOMIC_ACQUIRE) == *x->tx.prod)
		return;
	for (int i = 0; i < 8; i++) {
		if (sendto(x->fd, NULL, 0, MSG_DONTWAIT, NULL, 0) >= 0)
			return;
		if (errno != EAGAIN)
			break;
	}
	if (errno != EAGAIN && errno != EBUSY && errno != ENOBUFS)
		die("sendto %s queue %u", x->ifname, cfg.queue);
}

/* Completed tx frames go back to the free stack; the fill ring is topped up from it (at most cap). */
static void refill(struct xsk *x, unsigned cap)
{
	__u64 *cq = x->cq.descs, *fq = x->fq.descs;
	__u32 i, idx, n = ring_avail(&x->cq, cfg.ring, &idx);

	for (i = 0; i < n; i++)
		free_push(cq[(idx + i) & x->cq.mask]);
	ring_advance(x->cq.cons, n);
	tx_packets += n;
	n = ring_room(&x->fq, nfree < cap ? nfree : cap, &idx);
	for (i = 0; i < n; i++)
		fq[(idx + i) & x->fq.mask] = free_stack[--nfree];
	ring_advance(x->fq.prod, n);
	if (__atomic_load_n(x->fq.flags, __ATOMIC_RELAXED) & XDP_RING_NEED_WAKEUP)
		recvfrom(x->fd, NULL, 0, MSG_DONTWAIT, NULL, NULL);
}

static void print_stats(const char *name, const struct xdp_statistics *s)
{
	printf(",\"%s\":{\"rx_dropped\":%llu,\"rx_invalid_descs\":%llu,\"tx_invalid_descs\":%llu,"
	       "\"rx_ring_full\":%llu,\"rx_fill_ring_empty_descs\":%llu,\"tx_ring_empty_descs\":%llu}",
	       name, s->rx_dropped, s->rx_invalid_descs, s->tx_invalid_descs, s->rx_ring_full,
	       s->rx_fill_ring_empty_descs, s->tx_ring_empty_descs);
}

static void on_signal(int sig)
{
	stop = sig;
}

static unsigned num(const char *name, const char *s)
{
	char *end;
	unsigned long v = strtoul(s, &end, 0);

	if (!*s || *end || v > 0x7fffffff) {
		fprintf(stderr, "xsk_fwd: invalid --%s '%s'\n", name, s);
		exit(1);
	}
	return v;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "in", 1, 0, 'i' }, { "out", 1, 0, 'o' }, { "obj", 1, 0, 'O' }, { "queue", 1, 0, 'q' },
		{ "cpu", 1, 0, 'c' }, { "duration", 1, 0, 'd' }, { "bidirectional", 0, 0, 'b' },
		{ "ring", 1, 0, 'r' }, { "frames", 1, 0, 'f' }, { "frame-size", 1, 0, 's' },
		{ "batch", 1, 0, 'B' }, { "xdp-mode", 1, 0, 'm' }, { 0 } };
	struct rlimit unlimited = { RLIM_INFINITY, RLIM_INFINITY };
	struct xsk *xs[2] = { &in, &out };
	struct xdp_statistics st[2] = { 0 };
	struct xdp_options xo = { 0 };
	socklen_t len = sizeof(xo);
	double start, end = 0;
	int c, i;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'i': in.ifname = optarg; break;
		case 'o': out.ifname = optarg; break;
		case 'O': cfg.obj = optarg; break;
		case 'q': cfg.queue = num("queue", optarg); break;
		case 'c': cfg.cpu = num("cpu", optarg); break;
		case 'd': cfg.duration = num("duration", optarg); break;
		case 'b': cfg.bidir = true; break;
		case 'r': cfg.ring = num("ring", optarg); break;
		case 'f': cfg.frames = num("frames", optarg); break;
		case 's': cfg.frame_size = num("frame-size", optarg); break;
		case 'B': cfg.batch = num("batch", optarg); break;
		case 'm':
			cfg.generic = !strcmp(optarg, "generic");
			if (!cfg.generic && strcmp(optarg, "native"))
				goto usage;
			break;
		default: goto usage;
		}
	}
	/* The kernel wants power-of-two rings and, in aligned mode, power-of-two chunks of 2048..page. */
	if (optind != argc || !in.ifname || !out.ifname || !cfg.ring || (cfg.ring & (cfg.ring - 1)) ||
	    cfg.frame_size < 2048 || cfg.frame_size > (unsigned)getpagesize() ||
	    (cfg.frame_size & (cfg.frame_size - 1)) || cfg.frames < 2 || !cfg.batch || cfg.batch > cfg.ring)
		goto usage;

	setrlimit(RLIMIT_MEMLOCK, &unlimited); /* UMEM pinning is charged to it without CAP_IPC_LOCK */
	if (cfg.cpu >= 0) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(cfg.cpu, &set);
		if (sched_setaffinity(0, sizeof(set), &set))
			die("sched_setaffinity cpu %d", cfg.cpu);
	}
	for (i = 0; i < 2; i++)
		if (!(xs[i]->ifindex = if_nametoindex(xs[i]->ifname)))
			die("if_nametoindex %s queue %u", xs[i]->ifname, cfg.queue);
	umem = mmap(NULL, (size_t)cfg.frames * cfg.frame_size, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	free_stack = calloc(cfg.frames, sizeof(*free_stack));
	if (umem == MAP_FAILED || !free_stack)
		die("allocate umem of %u frames", cfg.frames);
	for (unsigned f = 0; f < cfg.frames; f++)
		free_stack[nfree++] = (__u64)f * cfg.frame_size;

	/* Zero-copy if both devices take it (the shared socket inherits the owner's mode), else copy.
	 * A closed socket leaves its queue asynchronously (deferred pool release): retry EBUSY a while. */
	if (xsk_open(&in, -1, XDP_ZEROCOPY | XDP_USE_NEED_WAKEUP) || xsk_open(&out, in.fd, 0)) {
		bool in_was_bound = out.fd >= 0;

		if (errno != EOPNOTSUPP && errno != EINVAL)
			die("bind %s queue %u", in_was_bound ? out.ifname : in.ifname, cfg.queue);
		xsk_close(&out);
		xsk_close(&in);
		for (i = 0; xsk_open(&in, -1, XDP_COPY | XDP_USE_NEED_WAKEUP); i++) {
			if (errno != EBUSY || !in_was_bound || i == 40)
				die("bind %s queue %u", in.ifname, cfg.queue);
			xsk_close(&in);
			usleep(50000);
		}
		if (xsk_open(&out, in.fd, 0))
			die("bind %s queue %u", out.ifname, cfg.queue);
	}
	if (getsockopt(in.fd, SOL_XDP, XDP_OPTIONS, &xo, &len))
		die("XDP_OPTIONS %s queue %u", in.ifname, cfg.queue);
	for (i = 0; i < 2; i++)
		refill(xs[i], cfg.frames / 2);
	for (i = 0; i < 2; i++)
		attach(xs[i]);

	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	start = now();
	if (cfg.duration)
		end = start + cfg.duration;
	fprintf(stderr, "ready\n");
	for (unsigned long iter = 0; !stop && !(end && !(iter & 255) && now() >= end); iter++) {
		forward(&in, &out);
		forward(&out, cfg.bidir ? &in : NULL);
		for (i = 0; i < 2; i++)
			kick_tx(xs[i]);
		for (i = 0; i < 2; i++)
			refill(xs[i], cfg.frames);
	}
	end = now();

	for (i = 0; i < 2; i++) {
		len = sizeof(st[i]);
		if (getsockopt(xs[i]->fd, SOL_XDP, XDP_STATISTICS, &st[i], &len))
			die("XDP_STATISTICS %s queue %u", xs[i]->ifname, cfg.queue);
		close(xs[i]->link);
		xs[i]->link = -1;
	}
	for (i = 1; i >= 0; i--) {
		xsk_close(xs[i]);
		bpf_object__close(xs[i]->obj);
	}
	printf("{\"rx_packets\":%llu,\"tx_packets\":%llu,\"tx_dropped\":%llu,\"seconds\":%.3f,"
	       "\"zero_copy\":%s,\"xdp_mode\":\"%s\"",
	       rx_packets, tx_packets, tx_dropped, end - start,
	       xo.flags & XDP_OPTIONS_ZEROCOPY ? "true" : "false", cfg.generic ? "generic" : "native");
	print_stats("xdp_stats_in", &st[0]);
	print_stats("xdp_stats_out", &st[1]);
	printf("}\n");
	return 0;

usage:
	fprintf(stderr, "usage: xsk_fwd --in IFACE --out IFACE [--obj PATH] [--queue N] [--cpu N] "
		"[--duration S] [--bidirectional] [--ring N] [--frames N] [--frame-size N] [--batch N] "
		"[--xdp-mode native|generic]\n");
	return 1;
}
