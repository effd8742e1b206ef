// Thread placement, waiting on sockets, closing descriptors.
#include "common.h"

#include <poll.h>
#include <sched.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

namespace xdpts {

namespace {

// pinThread(cpu): binds the calling thread (not the process) to one CPU.
Napi::Value PinThread(const Napi::CallbackInfo& info) {
  int64_t cpu;
  if (!ArgInt(info, 0, "cpu", &cpu)) return info.Env().Undefined();
  if (cpu < 0 || cpu >= CPU_SETSIZE) return ThrowMessage(info.Env(), "cpu out of range: " + std::to_string(cpu));
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(static_cast<int>(cpu), &set);
  if (sched_setaffinity(0, sizeof(set), &set))
    return ThrowErrno(info.Env(), "pin thread to cpu " + std::to_string(cpu), errno);
  return info.Env().Undefined();
}

// waitReadable(fds: Int32Array, count, timeoutMs) -> how many are readable (0 on timeout). The
// sleeping half of an adaptive poll loop: wakes when any socket has frames on its rx ring.
Napi::Value WaitReadable(const Napi::CallbackInfo& info) {
  Napi::Int32Array fds = info[0].As<Napi::Int32Array>();
  int count = info[1].As<Napi::Number>().Int32Value();
  int timeout = info[2].As<Napi::Number>().Int32Value();
  pollfd waiters[64];
  if (count > 64) count = 64;
  for (int i = 0; i < count; i++) waiters[i] = {fds[i], POLLIN, 0};
  int ready = poll(waiters, count, timeout);
  return Napi::Number::New(info.Env(), ready < 0 ? 0 : ready);
}

// closeFd(fd): closes a socket, a BPF link (which detaches its XDP program) or any other descriptor.
Napi::Value CloseFd(const Napi::CallbackInfo& info) {
  int64_t fd;
  if (!ArgInt(info, 0, "fd", &fd)) return info.Env().Undefined();
  if (close(static_cast<int>(fd)) && errno != EINTR)
    return ThrowErrno(info.Env(), "close fd " + std::to_string(fd), errno);
  return info.Env().Undefined();
}

}  // namespace

void InitSystem(Napi::Env env, Napi::Object exports) {
  exports.Set("pinThread", Napi::Function::New(env, PinThread));
  exports.Set("waitReadable", Napi::Function::New(env, WaitReadable));
  exports.Set("closeFd", Napi::Function::New(env, CloseFd));
}

}  // namespace xdpts
