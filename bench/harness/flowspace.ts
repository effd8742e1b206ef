/**
 * The generator's flow space (bench/bpf/bench_gen.c, bench_stamp.h) and the flows that forward it,
 * written for each datapath: xdp-ts megaflows (the datapath flow format) and OpenFlow rules for Open
 * vSwitch that make its datapath install the same megaflows.
 *
 * Flow i: UDP source port 1024 + i % 64512, IPv4 source 10.0.(i / 64512).1; everything else is the
 * template's (02:00:00:00:00:01 -> 02:00:00:00:00:02, 10.0.x.1 -> 10.0.0.2, TTL 64, TOS 0, port 9).
 */
export const PORTS_PER_ADDRESS = 64512;
export const BASE_PORT = 1024;
export const MAX_FLOWS = PORTS_PER_ADDRESS * 256;

export interface FlowTuple {
  srcIp: string;
  srcPort: number;
}

export function flowTuple(i: number): FlowTuple {
  if (!Number.isInteger(i) || i < 0 || i >= MAX_FLOWS) throw new RangeError(`flow ${i} is outside the generator's flow space (0..${MAX_FLOWS - 1})`);
  return { srcIp: `10.0.${Math.floor(i / PORTS_PER_ADDRESS)}.1`, srcPort: BASE_PORT + (i % PORTS_PER_ADDRESS) };
}

/**
 * xdp-ts megaflows for generated flows 0..count-1, from odp port 1 to 2. Flow i uses mask i % masks,
 * each mask matching a few more of the fields every generated frame has (TTL, TOS, addresses, MACs,
 * destination port), so masks differ and frames still match. Past 64512 flows the source address is
 * always matched (ports repeat per address).
 */
export function megaflows(count: number, masks = 1): string[] {
  const lines: string[] = [];
  const alwaysSource = count > PORTS_PER_ADDRESS;
  for (let i = 0; i < count; i++) {
    const { srcIp, srcPort } = flowTuple(i);
    const m = i % masks;
    const extra = ['ttl=64', 'tos=0', `src=${srcIp}`, 'dst=10.0.0.2'].slice(0, m % 5);
    if (alwaysSource && !extra.includes(`src=${srcIp}`)) extra.push(`src=${srcIp}`);
    const ipv4 = ['proto=17', 'frag=no', ...extra].join(',');
    const eth = m >= 5 ? 'eth(src=02:00:00:00:00:01,dst=02:00:00:00:00:02)' : 'eth()';
    lines.push(`in_port(1),${eth},eth_type(0x0800),ipv4(${ipv4}),udp(src=${srcPort}${m >= 5 && m % 2 ? ',dst=9' : ''}), actions:2`);
  }
  return lines;
}

/**
 * OpenFlow rules (ovs-ofctl add-flows syntax) for Open vSwitch's datapath to install the same
 * megaflows as megaflows(count, 1): one rule per flow matching in_port, UDP and the source port (and
 * the source address past 64512 flows), output to OpenFlow port 2. With count <= 1, in_port rules
 * both ways, as xdp-ts's `forward` config.
 */
export function openflowRules(count: number): string[] {
  if (count <= 1) return ['priority=10,in_port=1,actions=output:2', 'priority=10,in_port=2,actions=output:1'];
  const lines: string[] = ['priority=0,actions=drop'];
  const withSource = count > PORTS_PER_ADDRESS;
  for (let i = 0; i < count; i++) {
    const { srcIp, srcPort } = flowTuple(i);
    lines.push(`priority=10,udp,in_port=1,${withSource ? `nw_src=${srcIp},` : ''}tp_src=${srcPort},actions=output:2`);
  }
  return lines;
}
