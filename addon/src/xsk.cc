// UMEM areas and AF_XDP sockets over the raw kernel API (no libxdp). The UMEM and the four rings of
// each socket are handed to JavaScript as SharedArrayBuffers over the kernel's own mappings.
#include <cstring>
#include <vector>
#include "common.h"

#include <linux/if_xdp.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#ifndef SOL_XDP
#define SOL_XDP 283
#endif

namespace xdpts {

namespace {

// umemCreate(bytes, hugepages) -> SharedArrayBuffer: a page-aligned (or 2 MiB hugepage) anonymous area.
Napi::Value UmemCreate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t bytes;
  if (!ArgInt(info, 0, "size", &bytes)) return env.Undefined();
  bool hugepages = info.Length() > 1 && info[1].ToBoolean().Value();
  if (bytes <= 0 || bytes > (int64_t(1) << 31))
    return ThrowMessage(env, "UMEM size must be between 1 byte and 2 GiB");
  size_t length = static_cast<size_t>(bytes);
  int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE;
  if (hugepages) {
    length = (length + (2u << 20) - 1) & ~size_t((2u << 20) - 1);
    flags |= MAP_HUGETLB;
  }
  void* area = mmap(nullptr, length, PROT_READ | PROT_WRITE, flags, -1, 0);
  if (area == MAP_FAILED)
    return ThrowErrno(env, std::string("create UMEM of ") + std::to_string(length) + " bytes" +
                               (hugepages ? " on hugepages" : ""), errno);
  return MappedSharedArrayBuffer(env, area, length);
}

struct RingRequest {
  const char* name;
  int size_option;
  __u64 page_offset;
  const xdp_ring_offset* offsets;
  size_t descriptor_size;
  __u32 entries;
};

Napi::Object RingOffsets(Napi::Env env, const xdp_ring_offset& o) {
  Napi::Object result = Napi::Object::New(env);
  result.Set("producer", static_cast<double>(o.producer));
  result.Set("consumer", static_cast<double>(o.consumer));
  result.Set("desc", static_cast<double>(o.desc));
  result.Set("flags", static_cast<double>(o.flags));
  return result;
}

__u32 OptU32(Napi::Object options, const char* key, __u32 fallback) {
  Napi::Value value = options.Get(key);
  return value.IsNumber() ? value.As<Napi::Number>().Uint32Value() : fallback;
}

// xskCreate({ ifname, queue, umem, frameSize, headroom, ringSize, fillSize, compSize, shareWithFd,
//             zeroCopy: "auto"|"force"|"off" })
//   -> { fd, ifindex, zeroCopy, rings: { rx, tx, fill, comp: { buffer, producer, consumer, desc, flags,
//        size } } }
// The first socket on a UMEM (shareWithFd < 0) registers it; later ones share it through
// XDP_SHARED_UMEM and bring their own fill and completion rings, as a different device or queue needs.
Napi::Value XskCreate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) return ThrowMessage(env, "xskCreate takes an options object");
  Napi::Object options = info[0].As<Napi::Object>();
  if (!options.Get("ifname").IsString()) return ThrowMessage(env, "ifname must be a string");
  std::string ifname = options.Get("ifname").As<Napi::String>().Utf8Value();
  __u32 queue = OptU32(options, "queue", 0);
  std::string where = ifname + " queue " + std::to_string(queue);
  unsigned ifindex;
  if (!InterfaceIndex(env, ifname, &ifindex)) return env.Undefined();
  size_t umem_length = 0;
  void* umem = SharedArrayBufferData(options.Get("umem"), &umem_length);
  if (!umem) return ThrowMessage(env, "umem must be the SharedArrayBuffer from umemCreate");
  __u32 frame_size = OptU32(options, "frameSize", 4096);
  __u32 headroom = OptU32(options, "headroom", 0);
  __u32 ring_size = OptU32(options, "ringSize", 2048);
  __u32 fill_size = OptU32(options, "fillSize", ring_size);
  __u32 comp_size = OptU32(options, "compSize", ring_size);
  int share_fd = options.Get("shareWithFd").IsNumber() ? options.Get("shareWithFd").As<Napi::Number>().Int32Value() : -1;
  std::string zero_copy = options.Get("zeroCopy").IsString() ? options.Get("zeroCopy").As<Napi::String>().Utf8Value() : "auto";

  int fd = socket(AF_XDP, SOCK_RAW | SOCK_CLOEXEC, 0);
  if (fd < 0) return ThrowErrno(env, "create AF_XDP socket for " + where, errno);
  auto fail = [&](const std::string& what, int err) {
    close(fd);
    return ThrowErrno(env, what + " " + where, err);
  };

  if (share_fd < 0) {
    xdp_umem_reg reg = {};
    reg.addr = reinterpret_cast<__u64>(umem);
    reg.len = umem_length;
    reg.chunk_size = frame_size;
    reg.headroom = headroom;
    if (setsockopt(fd, SOL_XDP, XDP_UMEM_REG, &reg, sizeof(reg))) return fail("register UMEM for", errno);
  }
  if (setsockopt(fd, SOL_XDP, XDP_UMEM_FILL_RING, &fill_size, sizeof(fill_size)))
    return fail("size fill ring of", errno);
  if (setsockopt(fd, SOL_XDP, XDP_UMEM_COMPLETION_RING, &comp_size, sizeof(comp_size)))
    return fail("size completion ring of", errno);
  if (setsockopt(fd, SOL_XDP, XDP_RX_RING, &ring_size, sizeof(ring_size))) return fail("size rx ring of", errno);
  if (setsockopt(fd, SOL_XDP, XDP_TX_RING, &ring_size, sizeof(ring_size))) return fail("size tx ring of", errno);

  xdp_mmap_offsets offsets = {};
  socklen_t optlen = sizeof(offsets);
  if (getsockopt(fd, SOL_XDP, XDP_MMAP_OFFSETS, &offsets, &optlen)) return fail("read ring offsets of", errno);

  const RingRequest requests[] = {
      {"rx", XDP_RX_RING, XDP_PGOFF_RX_RING, &offsets.rx, sizeof(xdp_desc), ring_size},
      {"tx", XDP_TX_RING, XDP_PGOFF_TX_RING, &offsets.tx, sizeof(xdp_desc), ring_size},
      {"fill", XDP_UMEM_FILL_RING, XDP_UMEM_PGOFF_FILL_RING, &offsets.fr, sizeof(__u64), fill_size},
      {"comp", XDP_UMEM_COMPLETION_RING, XDP_UMEM_PGOFF_COMPLETION_RING, &offsets.cr, sizeof(__u64), comp_size},
  };
  Napi::Object rings = Napi::Object::New(env);
  for (const RingRequest& request : requests) {
    size_t length = request.offsets->desc + size_t(request.entries) * request.descriptor_size;
    void* map = mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd,
                     static_cast<off_t>(request.page_offset));
    if (map == MAP_FAILED) return fail(std::string("map ") + request.name + " ring of", errno);
    Napi::Object ring = RingOffsets(env, *request.offsets);
    ring.Set("buffer", MappedSharedArrayBuffer(env, map, length));
    ring.Set("size", request.entries);
    rings.Set(request.name, ring);
  }

  sockaddr_xdp address = {};
  address.sxdp_family = AF_XDP;
  address.sxdp_ifindex = ifindex;
  address.sxdp_queue_id = queue;
  bool zero_copy_bound = false;
  if (share_fd >= 0) {
    // The mode and need_wakeup are those of the socket that registered the UMEM.
    address.sxdp_flags = XDP_SHARED_UMEM;
    address.sxdp_shared_umem_fd = static_cast<__u32>(share_fd);
    if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address))) return fail("bind", errno);
  } else {
    int err = 0;
    if (zero_copy != "off") {
      address.sxdp_flags = XDP_USE_NEED_WAKEUP | XDP_ZEROCOPY;
      err = bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) ? errno : 0;
      zero_copy_bound = err == 0;
      if (err && zero_copy == "force") return fail("bind (zero-copy)", err);
    }
    if (!zero_copy_bound) {
      address.sxdp_flags = XDP_USE_NEED_WAKEUP | XDP_COPY;
      if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address))) return fail("bind", errno);
    }
  }
  xdp_options xdp_opts = {};
  optlen = sizeof(xdp_opts);
  if (getsockopt(fd, SOL_XDP, XDP_OPTIONS, &xdp_opts, &optlen)) return fail("read options of", errno);

  Napi::Object result = Napi::Object::New(env);
  result.Set("fd", fd);
  result.Set("ifindex", ifindex);
  result.Set("zeroCopy", (xdp_opts.flags & XDP_OPTIONS_ZEROCOPY) != 0);
  result.Set("rings", rings);
  return result;
}

// ringDetach(buffer): puts anonymous memory holding the same bytes under a ring's SharedArrayBuffer
// in place of the kernel's mapping. A mapping holds the socket open: without this a closed socket
// stays bound to its queue until the garbage collector frees the buffer, and the queue cannot be
// bound again. JavaScript views stay valid (and read what the ring held last).
Napi::Value RingDetach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  size_t length = 0;
  void* data = info.Length() > 0 ? SharedArrayBufferData(info[0], &length) : nullptr;
  if (!data || length == 0) return ThrowMessage(env, "ringDetach takes a ring's SharedArrayBuffer");
  std::vector<unsigned char> copy(static_cast<unsigned char*>(data), static_cast<unsigned char*>(data) + length);
  void* fresh = mmap(data, length, PROT_READ | PROT_WRITE, MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (fresh == MAP_FAILED) return ThrowErrno(env, "replace ring mapping", errno);
  memcpy(fresh, copy.data(), length);
  return env.Undefined();
}

// xskStatistics(fd) -> the kernel's XDP_STATISTICS for the socket.
Napi::Value XskStatistics(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t fd;
  if (!ArgInt(info, 0, "socket fd", &fd)) return env.Undefined();
  xdp_statistics stats = {};
  socklen_t optlen = sizeof(stats);
  if (getsockopt(static_cast<int>(fd), SOL_XDP, XDP_STATISTICS, &stats, &optlen))
    return ThrowErrno(env, "read XDP statistics of socket " + std::to_string(fd), errno);
  Napi::Object result = Napi::Object::New(env);
  result.Set("rxDropped", static_cast<double>(stats.rx_dropped));
  result.Set("rxInvalidDescs", static_cast<double>(stats.rx_invalid_descs));
  result.Set("txInvalidDescs", static_cast<double>(stats.tx_invalid_descs));
  result.Set("rxRingFull", static_cast<double>(stats.rx_ring_full));
  result.Set("rxFillRingEmptyDescs", static_cast<double>(stats.rx_fill_ring_empty_descs));
  result.Set("txRingEmptyDescs", static_cast<double>(stats.tx_ring_empty_descs));
  return result;
}

// kickTx(fd) -> 0 or an errno: asks the kernel to send what is on the tx ring. Copy mode sends at most
// 32 descriptors a call and answers EAGAIN while more are waiting, so this repeats a few times.
Napi::Value KickTx(const Napi::CallbackInfo& info) {
  int fd = info[0].As<Napi::Number>().Int32Value();
  int err = 0;
  for (int attempt = 0; attempt < 8; attempt++) {
    if (sendto(fd, nullptr, 0, MSG_DONTWAIT, nullptr, 0) >= 0) return Napi::Number::New(info.Env(), 0);
    err = errno;
    if (err != EAGAIN) break;
  }
  // EBUSY/ENOBUFS/EAGAIN are transient back-pressure; the caller counts and goes on.
  return Napi::Number::New(info.Env(), err);
}

// kickRx(fd): wakes the driver to refill from the fill ring (when it set need_wakeup there).
Napi::Value KickRx(const Napi::CallbackInfo& info) {
  int fd = info[0].As<Napi::Number>().Int32Value();
  ssize_t ret = recvfrom(fd, nullptr, 0, MSG_DONTWAIT, nullptr, nullptr);
  return Napi::Number::New(info.Env(), ret < 0 ? errno : 0);
}

}  // namespace

void InitXsk(Napi::Env env, Napi::Object exports) {
  exports.Set("umemCreate", Napi::Function::New(env, UmemCreate));
  exports.Set("xskCreate", Napi::Function::New(env, XskCreate));
  exports.Set("xskStatistics", Napi::Function::New(env, XskStatistics));
  exports.Set("ringDetach", Napi::Function::New(env, RingDetach));
  exports.Set("kickTx", Napi::Function::New(env, KickTx));
  exports.Set("kickRx", Napi::Function::New(env, KickRx));
}

}  // namespace xdpts
