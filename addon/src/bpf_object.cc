// BPF objects, XDP attachment and maps. XDP programs are attached through BPF links, so an attachment
// dies with the process that made it (a crashed datapath never leaves its program on the interface).
#include "common.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace xdpts {

namespace {

std::mutex objects_lock;
std::unordered_map<int, bpf_object*> objects;
int next_object_handle = 1;

// libbpf's own diagnostics (verifier logs, probe failures) go to stderr only when asked for with
// XDP_TS_LIBBPF_DEBUG=1; otherwise the error the addon throws is the one message a user sees.
bool libbpf_debug = false;

int PrintWarnings(enum libbpf_print_level level, const char* format, va_list args) {
  if (!libbpf_debug || level == LIBBPF_DEBUG) return 0;
  return vfprintf(stderr, format, args);
}

bpf_object* ObjectOf(const Napi::CallbackInfo& info, size_t index) {
  int64_t handle;
  if (!ArgInt(info, index, "object handle", &handle)) return nullptr;
  std::lock_guard<std::mutex> guard(objects_lock);
  auto it = objects.find(static_cast<int>(handle));
  if (it == objects.end()) {
    ThrowMessage(info.Env(), "BPF object handle " + std::to_string(handle) + " is not open");
    return nullptr;
  }
  return it->second;
}

const char* ModeName(int attach_mode) {
  switch (attach_mode) {
    case XDP_ATTACHED_DRV: return "native";
    case XDP_ATTACHED_SKB: return "generic";
    case XDP_ATTACHED_HW: return "offload";
    case XDP_ATTACHED_MULTI: return "multi";
    default: return "none";
  }
}

// bpfObjectLoad(path) -> handle: opens and loads every program and map of an ELF object.
Napi::Value BpfObjectLoad(const Napi::CallbackInfo& info) {
  std::string path;
  if (!ArgString(info, 0, "path", &path)) return info.Env().Undefined();
  bpf_object* object = bpf_object__open_file(path.c_str(), nullptr);
  if (!object) return ThrowErrno(info.Env(), "open BPF object " + path, errno);
  int err = bpf_object__load(object);
  if (err) {
    bpf_object__close(object);
    return ThrowErrno(info.Env(), "load BPF object " + path, -err);
  }
  std::lock_guard<std::mutex> guard(objects_lock);
  int handle = next_object_handle++;
  objects[handle] = object;
  return Napi::Number::New(info.Env(), handle);
}

Napi::Value BpfObjectClose(const Napi::CallbackInfo& info) {
  int64_t handle;
  if (!ArgInt(info, 0, "object handle", &handle)) return info.Env().Undefined();
  std::lock_guard<std::mutex> guard(objects_lock);
  auto it = objects.find(static_cast<int>(handle));
  if (it != objects.end()) {
    bpf_object__close(it->second);
    objects.erase(it);
  }
  return info.Env().Undefined();
}

Napi::Value BpfProgramFd(const Napi::CallbackInfo& info) {
  bpf_object* object = ObjectOf(info, 0);
  std::string name;
  if (!object || !ArgString(info, 1, "program name", &name)) return info.Env().Undefined();
  bpf_program* program = bpf_object__find_program_by_name(object, name.c_str());
  if (!program) return ThrowErrno(info.Env(), "find BPF program " + name, ENOENT);
  return Napi::Number::New(info.Env(), bpf_program__fd(program));
}

Napi::Value BpfMapFd(const Napi::CallbackInfo& info) {
  bpf_object* object = ObjectOf(info, 0);
  std::string name;
  if (!object || !ArgString(info, 1, "map name", &name)) return info.Env().Undefined();
  int fd = bpf_object__find_map_fd_by_name(object, name.c_str());
  if (fd < 0) return ThrowErrno(info.Env(), "find BPF map " + name, ENOENT);
  return Napi::Number::New(info.Env(), fd);
}

// xdpAttach(progFd, ifname, mode) -> { linkFd, ifindex, mode }. mode: "native", "generic" or "auto"
// (native, then generic if the driver has no native XDP). Fails with EBUSY if any program is there.
Napi::Value XdpAttach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t prog_fd;
  std::string ifname, mode;
  unsigned ifindex;
  if (!ArgInt(info, 0, "program fd", &prog_fd) || !ArgString(info, 1, "interface", &ifname) ||
      !ArgString(info, 2, "mode", &mode) || !InterfaceIndex(env, ifname, &ifindex))
    return env.Undefined();
  if (mode != "native" && mode != "generic" && mode != "auto")
    return ThrowMessage(env, "xdp mode must be native, generic or auto, not " + mode);
  LIBBPF_OPTS(bpf_link_create_opts, opts);
  opts.flags = mode == "generic" ? XDP_FLAGS_SKB_MODE : XDP_FLAGS_DRV_MODE;
  int link_fd = bpf_link_create(static_cast<int>(prog_fd), ifindex, BPF_XDP, &opts);
  if (link_fd < 0 && mode == "auto" && (errno == EOPNOTSUPP || errno == EINVAL)) {
    opts.flags = XDP_FLAGS_SKB_MODE;
    link_fd = bpf_link_create(static_cast<int>(prog_fd), ifindex, BPF_XDP, &opts);
  }
  if (link_fd < 0) return ThrowErrno(env, "attach xdp to " + ifname + " (" + mode + ")", errno);
  Napi::Object result = Napi::Object::New(env);
  result.Set("linkFd", link_fd);
  result.Set("ifindex", ifindex);
  result.Set("mode", opts.flags == XDP_FLAGS_SKB_MODE ? "generic" : "native");
  return result;
}

// xdpQuery(ifname) -> { progId, mode }: what is attached now (progId 0 and mode "none" if nothing).
Napi::Value XdpQuery(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string ifname;
  unsigned ifindex;
  if (!ArgString(info, 0, "interface", &ifname) || !InterfaceIndex(env, ifname, &ifindex))
    return env.Undefined();
  LIBBPF_OPTS(bpf_xdp_query_opts, opts);
  int err = bpf_xdp_query(ifindex, 0, &opts);
  if (err) return ThrowErrno(env, "query xdp on " + ifname, -err);
  __u32 prog_id = opts.prog_id ? opts.prog_id : opts.drv_prog_id ? opts.drv_prog_id : opts.skb_prog_id;
  Napi::Object result = Napi::Object::New(env);
  result.Set("progId", prog_id);
  result.Set("mode", ModeName(opts.attach_mode));
  return result;
}

// mapUpdate(mapFd, key, value): u32 key, u32 value (XSKMAP, DEVMAP and config arrays all take these).
Napi::Value MapUpdate(const Napi::CallbackInfo& info) {
  int64_t fd, key, value;
  if (!ArgInt(info, 0, "map fd", &fd) || !ArgInt(info, 1, "key", &key) || !ArgInt(info, 2, "value", &value))
    return info.Env().Undefined();
  __u32 k = static_cast<__u32>(key), v = static_cast<__u32>(value);
  if (bpf_map_update_elem(static_cast<int>(fd), &k, &v, BPF_ANY))
    return ThrowErrno(info.Env(), "update map key " + std::to_string(key), errno);
  return info.Env().Undefined();
}

Napi::Value MapDelete(const Napi::CallbackInfo& info) {
  int64_t fd, key;
  if (!ArgInt(info, 0, "map fd", &fd) || !ArgInt(info, 1, "key", &key)) return info.Env().Undefined();
  __u32 k = static_cast<__u32>(key);
  if (bpf_map_delete_elem(static_cast<int>(fd), &k) && errno != ENOENT)
    return ThrowErrno(info.Env(), "delete map key " + std::to_string(key), errno);
  return info.Env().Undefined();
}

// percpuCounters(mapFd, count) -> number[]: each u64 slot of a per-CPU array, summed over the CPUs.
Napi::Value PercpuCounters(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t fd, count;
  if (!ArgInt(info, 0, "map fd", &fd) || !ArgInt(info, 1, "count", &count)) return env.Undefined();
  int cpus = libbpf_num_possible_cpus();
  if (cpus <= 0) return ThrowErrno(env, "count possible CPUs", -cpus);
  std::vector<__u64> values(cpus);
  Napi::Array result = Napi::Array::New(env, count);
  for (__u32 key = 0; key < count; key++) {
    if (bpf_map_lookup_elem(static_cast<int>(fd), &key, values.data()))
      return ThrowErrno(env, "read per-CPU counter " + std::to_string(key), errno);
    double sum = 0;
    for (__u64 v : values) sum += static_cast<double>(v);
    result.Set(key, sum);
  }
  return result;
}

// xdpRunLive(progFd, ifname, frame, repeat, batchSize) -> nanoseconds: BPF_PROG_TEST_RUN with
// BPF_F_TEST_XDP_LIVE_FRAMES. The program's XDP_TX sends the frame out of ifname `repeat` times.
Napi::Value XdpRunLive(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t prog_fd, repeat, batch;
  std::string ifname;
  unsigned ifindex;
  if (!ArgInt(info, 0, "program fd", &prog_fd) || !ArgString(info, 1, "interface", &ifname) ||
      !InterfaceIndex(env, ifname, &ifindex))
    return env.Undefined();
  if (info.Length() < 3 || !info[2].IsTypedArray())
    return ThrowMessage(env, "frame must be a Uint8Array");
  if (!ArgInt(info, 3, "repeat", &repeat) || !ArgInt(info, 4, "batch size", &batch)) return env.Undefined();
  Napi::Uint8Array frame = info[2].As<Napi::Uint8Array>();
  struct xdp_md context = {};
  context.ingress_ifindex = ifindex;
  context.data_end = static_cast<__u32>(frame.ByteLength());  // the kernel requires data_end == size
  LIBBPF_OPTS(bpf_test_run_opts, opts);
  opts.data_in = frame.Data();
  opts.data_size_in = static_cast<__u32>(frame.ByteLength());
  opts.ctx_in = &context;
  opts.ctx_size_in = sizeof(context);
  opts.repeat = static_cast<__u32>(repeat);
  opts.batch_size = static_cast<__u32>(batch);
  opts.flags = BPF_F_TEST_XDP_LIVE_FRAMES;
  struct timespec start, end;
  clock_gettime(CLOCK_MONOTONIC, &start);
  int err = bpf_prog_test_run_opts(static_cast<int>(prog_fd), &opts);
  clock_gettime(CLOCK_MONOTONIC, &end);
  if (err) return ThrowErrno(env, "run live frames on " + ifname, errno);
  double ns = (end.tv_sec - start.tv_sec) * 1e9 + (end.tv_nsec - start.tv_nsec);
  return Napi::Number::New(env, ns);
}

}  // namespace

void InitBpfObject(Napi::Env env, Napi::Object exports) {
  const char* debug = getenv("XDP_TS_LIBBPF_DEBUG");
  libbpf_debug = debug && debug[0] == '1';
  libbpf_set_print(PrintWarnings);
  exports.Set("bpfObjectLoad", Napi::Function::New(env, BpfObjectLoad));
  exports.Set("bpfObjectClose", Napi::Function::New(env, BpfObjectClose));
  exports.Set("bpfProgramFd", Napi::Function::New(env, BpfProgramFd));
  exports.Set("bpfMapFd", Napi::Function::New(env, BpfMapFd));
  exports.Set("xdpAttach", Napi::Function::New(env, XdpAttach));
  exports.Set("xdpQuery", Napi::Function::New(env, XdpQuery));
  exports.Set("mapUpdate", Napi::Function::New(env, MapUpdate));
  exports.Set("mapDelete", Napi::Function::New(env, MapDelete));
  exports.Set("percpuCounters", Napi::Function::New(env, PercpuCounters));
  exports.Set("xdpRunLive", Napi::Function::New(env, XdpRunLive));
}

}  // namespace xdpts
