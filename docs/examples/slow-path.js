// An xdp-ts slow path module: a tiny router-ish policy, to show the interface.
//
//   config: { "slowPath": { "type": "module", "path": "docs/examples/slow-path.js",
//                          "options": { "uplink": 2, "blockedPort": 23 } } }
//
// translate(upcall, key, context) runs in a handler thread for every missed frame and returns the
// datapath actions for it (text, as ovs-dpctl writes them), or { actions, install: false } to
// execute the frame without installing a flow. The megaflow the datapath installs matches exactly
// the key fields this function read (through `key`), so read only what the decision needs.
//
//   upcall:  { kind: 'miss', inPort, frame (Uint8Array, the frame's first bytes), frameLength, userdata }
//   key:     key.field(name)        -> number    names: in_port, eth_type, ipv4_src, ipv4_dst, ip_proto,
//                                                  tp_src, tp_dst, vlan_vid, eth_dst_lo, ... (KEY_FIELDS)
//            key.prefix(name, bits) -> number    the top bits of an address (a route lookup)
//            key.word(index, mask)  -> number    a raw flow key word (src/flow-key.ts)
//   context: { ports: [{ number, name }], options (from the config), nowMs }
//
// Export `version()` returning a number that changes when your decisions may change: the
// revalidator then re-translates the flows you installed.

'use strict';

const ETH_TYPE_IPV4 = 0x0800;
const IP_PROTO_TCP = 6;

exports.translate = function translate(upcall, key, context) {
  const options = context.options || {};
  const uplink = options.uplink || context.ports[context.ports.length - 1].number;
  // Non-IPv4 traffic is flooded: the decision read only eth_type.
  if (key.field('eth_type') !== ETH_TYPE_IPV4) {
    return context.ports.filter((p) => p.number !== upcall.inPort).map((p) => p.number).join(',') || 'drop';
  }
  // Telnet is dropped (the flow then matches proto and destination port).
  if (key.field('ip_proto') === IP_PROTO_TCP && key.field('tp_dst') === (options.blockedPort || 23)) return 'drop';
  // 10.0.0.0/8 goes to the uplink; the rest too, unless it came from there (then to the first
  // port). A /8 prefix of the destination is all this reads of it.
  if (key.prefix('ipv4_dst', 8) === 0x0a000000) return String(uplink);
  return String(upcall.inPort === uplink ? context.ports[0].number : uplink);
};
