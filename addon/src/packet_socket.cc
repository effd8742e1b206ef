// AF_PACKET sockets, for the test rig and benchmarks to send and capture frames on an interface
// without going through the datapath under test.
#include "common.h"

#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace xdpts {

namespace {

// packetOpen(ifname, receiveBufferBytes) -> fd: bound to ifname, receives every frame it sees
// (outgoing ones excluded), sends frames as given (no qdisc bypass: the queue follows the flow hash).
// PACKET_AUXDATA is on: the receive path untags the outer VLAN header into the skb's metadata, and
// packetReceive puts it back, so a capture shows the frame as it was on the wire (as libpcap does).
Napi::Value PacketOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string ifname;
  int64_t receive_buffer = 0;
  unsigned ifindex;
  if (!ArgString(info, 0, "interface", &ifname) || !InterfaceIndex(env, ifname, &ifindex)) return env.Undefined();
  if (info.Length() > 1 && !ArgInt(info, 1, "receive buffer", &receive_buffer)) return env.Undefined();
  int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
  if (fd < 0) return ThrowErrno(env, "open packet socket on " + ifname, errno);
  int one = 1;
  setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof(one));
  setsockopt(fd, SOL_PACKET, PACKET_AUXDATA, &one, sizeof(one));
  if (receive_buffer > 0) {
    int bytes = static_cast<int>(receive_buffer);
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof(bytes)) &&
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof(bytes))) {
      int err = errno;
      close(fd);
      return ThrowErrno(env, "size receive buffer of packet socket on " + ifname, err);
    }
  }
  sockaddr_ll address = {};
  address.sll_family = AF_PACKET;
  address.sll_protocol = htons(ETH_P_ALL);
  address.sll_ifindex = static_cast<int>(ifindex);
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address))) {
    int err = errno;
    close(fd);
    return ThrowErrno(env, "bind packet socket to " + ifname, err);
  }
  return Napi::Number::New(env, fd);
}

// packetSend(fd, frame) -> bytes sent.
Napi::Value PacketSend(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t fd;
  if (!ArgInt(info, 0, "fd", &fd)) return env.Undefined();
  if (info.Length() < 2 || !info[1].IsTypedArray()) return ThrowMessage(env, "frame must be a Uint8Array");
  Napi::Uint8Array frame = info[1].As<Napi::Uint8Array>();
  ssize_t sent;
  do {
    sent = send(static_cast<int>(fd), frame.Data(), frame.ByteLength(), 0);
  } while (sent < 0 && errno == EINTR);
  if (sent < 0) return ThrowErrno(env, "send on packet socket", errno);
  return Napi::Number::New(env, static_cast<double>(sent));
}

// packetReceive(fd, buffer, timeoutMs) -> frame length, or -1 when nothing came within the timeout.
Napi::Value PacketReceive(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t fd, timeout;
  if (!ArgInt(info, 0, "fd", &fd)) return env.Undefined();
  if (info.Length() < 2 || !info[1].IsTypedArray()) return ThrowMessage(env, "buffer must be a Uint8Array");
  if (!ArgInt(info, 2, "timeout", &timeout)) return env.Undefined();
  Napi::Uint8Array buffer = info[1].As<Napi::Uint8Array>();
  pollfd waiter = {static_cast<int>(fd), POLLIN, 0};
  int ready;
  do {
    ready = poll(&waiter, 1, static_cast<int>(timeout));
  } while (ready < 0 && errno == EINTR);
  if (ready < 0) return ThrowErrno(env, "wait on packet socket", errno);
  if (ready == 0) return Napi::Number::New(env, -1);
  // Received 4 bytes in: room to put an untagged VLAN header back in front of the type field.
  uint8_t* data = buffer.Data();
  size_t capacity = buffer.ByteLength();
  if (capacity < 4) return ThrowMessage(env, "buffer too small");
  iovec iov = {data + 4, capacity - 4};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(tpacket_auxdata))];
  msghdr message = {};
  message.msg_iov = &iov;
  message.msg_iovlen = 1;
  message.msg_control = control;
  message.msg_controllen = sizeof(control);
  ssize_t length = recvmsg(static_cast<int>(fd), &message, MSG_TRUNC | MSG_DONTWAIT);
  if (length < 0) return ThrowErrno(env, "receive on packet socket", errno);
  bool tagged = false;
  uint16_t tci = 0, tpid = ETH_P_8021Q;
  for (cmsghdr* c = CMSG_FIRSTHDR(&message); c; c = CMSG_NXTHDR(&message, c)) {
    if (c->cmsg_level != SOL_PACKET || c->cmsg_type != PACKET_AUXDATA) continue;
    tpacket_auxdata aux;
    memcpy(&aux, CMSG_DATA(c), sizeof(aux));
    if (aux.tp_status & TP_STATUS_VLAN_VALID) {
      tagged = true;
      tci = aux.tp_vlan_tci;
      if (aux.tp_status & TP_STATUS_VLAN_TPID_VALID) tpid = aux.tp_vlan_tpid;
    }
  }
  size_t stored = static_cast<size_t>(length) < capacity - 4 ? static_cast<size_t>(length) : capacity - 4;
  if (!tagged || length < 12) {
    memmove(data, data + 4, stored);
    return Napi::Number::New(env, static_cast<double>(length));
  }
  memmove(data, data + 4, 12);
  data[12] = tpid >> 8;
  data[13] = tpid & 0xff;
  data[14] = tci >> 8;
  data[15] = tci & 0xff;
  return Napi::Number::New(env, static_cast<double>(length + 4));
}

}  // namespace

void InitPacketSocket(Napi::Env env, Napi::Object exports) {
  exports.Set("packetOpen", Napi::Function::New(env, PacketOpen));
  exports.Set("packetSend", Napi::Function::New(env, PacketSend));
  exports.Set("packetReceive", Napi::Function::New(env, PacketReceive));
}

}  // namespace xdpts
