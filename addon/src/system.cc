// Thread placement, waiting on sockets, closing descriptors.
#include "common.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <unistd.h>

#include <cerrno>
#include <string>
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

// threadAffinity(tid) -> the CPUs thread `tid` (0: the caller) may run on, ascending.
Napi::Value ThreadAffinity(const Napi::CallbackInfo& info) {
  int64_t tid;
  if (!ArgInt(info, 0, "tid", &tid)) return info.Env().Undefined();
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(static_cast<pid_t>(tid), sizeof(set), &set))
    return ThrowErrno(info.Env(), "affinity of thread " + std::to_string(tid), errno);
  Napi::Array cpus = Napi::Array::New(info.Env());
  uint32_t n = 0;
  for (int cpu = 0; cpu < CPU_SETSIZE; cpu++)
    if (CPU_ISSET(cpu, &set)) cpus.Set(n++, Napi::Number::New(info.Env(), cpu));
  return cpus;
}

// setThreadAffinity(tid, cpus): lets thread `tid` (0: the caller) of this process run on `cpus` only.
// Threads it creates afterwards start with the same set.
Napi::Value SetThreadAffinity(const Napi::CallbackInfo& info) {
  int64_t tid;
  if (!ArgInt(info, 0, "tid", &tid)) return info.Env().Undefined();
  if (info.Length() < 2 || !info[1].IsArray()) return ThrowMessage(info.Env(), "cpus must be an array of CPU numbers");
  Napi::Array cpus = info[1].As<Napi::Array>();
  if (cpus.Length() == 0) return ThrowMessage(info.Env(), "cpus must not be empty");
  cpu_set_t set;
  CPU_ZERO(&set);
  for (uint32_t i = 0; i < cpus.Length(); i++) {
    Napi::Value v = cpus.Get(i);
    int64_t cpu = v.IsNumber() ? v.As<Napi::Number>().Int64Value() : -1;
    if (cpu < 0 || cpu >= CPU_SETSIZE) return ThrowMessage(info.Env(), "cpu out of range: " + v.ToString().Utf8Value());
    CPU_SET(static_cast<int>(cpu), &set);
  }
  if (sched_setaffinity(static_cast<pid_t>(tid), sizeof(set), &set))
    return ThrowErrno(info.Env(), "set affinity of thread " + std::to_string(tid), errno);
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

// execv(path, args): replaces this process's image with `path` run with argv `args` (args[0]
// included), keeping its pid, environment, stdin/stdout/stderr and the descriptors without
// close-on-exec. Returns only on failure, by throwing with the errno. The daemon uses it to restart
// itself under node flags that must be given at start (V8's heap sizes), as the same process a
// service manager or a test knows.
Napi::Value Execv(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsArray())
    return ThrowMessage(env, "execv(path, args): path must be a string, args an array of strings");
  std::string path = info[0].As<Napi::String>().Utf8Value();
  Napi::Array list = info[1].As<Napi::Array>();
  if (list.Length() == 0) return ThrowMessage(env, "execv: args must hold at least argv[0]");
  std::vector<std::string> args;
  for (uint32_t i = 0; i < list.Length(); i++) {
    Napi::Value v = list.Get(i);
    if (!v.IsString()) return ThrowMessage(env, "execv: args[" + std::to_string(i) + "] is not a string");
    args.push_back(v.As<Napi::String>().Utf8Value());
  }
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  // Node marks the standard descriptors close-on-exec: without this the new image starts with
  // /dev/null for stdin, stdout and stderr, and the daemon's log goes nowhere.
  for (int fd = 0; fd <= 2; fd++) {
    int flags = fcntl(fd, F_GETFD);
    if (flags >= 0 && (flags & FD_CLOEXEC)) fcntl(fd, F_SETFD, flags & ~FD_CLOEXEC);
  }
  execv(path.c_str(), argv.data());
  return ThrowErrno(env, "execv " + path, errno);
}

}  // namespace

void InitSystem(Napi::Env env, Napi::Object exports) {
  exports.Set("execv", Napi::Function::New(env, Execv));
  exports.Set("pinThread", Napi::Function::New(env, PinThread));
  exports.Set("threadAffinity", Napi::Function::New(env, ThreadAffinity));
  exports.Set("setThreadAffinity", Napi::Function::New(env, SetThreadAffinity));
  exports.Set("waitReadable", Napi::Function::New(env, WaitReadable));
  exports.Set("closeFd", Napi::Function::New(env, CloseFd));
}

}  // namespace xdpts
