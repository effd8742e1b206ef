/**
 * `xdp-ts xdp-detach --config FILE [--all]`: removes XDP programs left on the interfaces of a
 * config's afxdp ports. The daemon attaches through BPF links, which the kernel drops with the
 * process, so after any exit (a crash too) there is normally nothing to do. What can be left is a
 * program attached the old way, through netlink (by an older build, by `ip link set ... xdp obj`, or
 * by a process inside a namespace), and such a program blocks the next attach with EBUSY. The
 * systemd unit runs this as ExecStopPost and the Kubernetes DaemonSet as an init container.
 *
 * It asks iproute2 (`ip -j -d link show`) what is attached and detaches with
 * `ip link set dev IF xdpdrv|xdpgeneric|xdpoffload off`, so it needs CAP_NET_ADMIN, not the addon.
 * Only programs named xdp_steer (bpf/xdp_steer.c) are removed unless --all is given: a foreign
 * program is reported and left alone. Reading an attached program's name takes CAP_SYS_ADMIN (the
 * kernel's BPF_PROG_GET_FD_BY_ID), so without it the name is unknown: such a program is left and
 * reported as a failure, unless --all. A program held by a live BPF link (a running daemon) cannot
 * be detached this way; that is reported as a failure too.
 *
 * Exit: 0 when no program of ours (or, with --all, none at all) is left, 1 otherwise, 2 on a bad
 * config or usage.
 */
import { execFileSync } from 'node:child_process';
import { loadConfigFile } from './config';

export const STEER_PROGRAM_NAME = 'xdp_steer';

/** IFLA_XDP_ATTACHED modes, as `ip -j -d link show` reports them, and the `ip link set` keyword for each. */
const MODE_KEYWORDS: Record<number, string> = { 1: 'xdpdrv', 2: 'xdpgeneric', 3: 'xdpoffload' };

export interface AttachedProgram {
  mode: 'xdpdrv' | 'xdpgeneric' | 'xdpoffload' | string;
  id: number;
  name: string;
}

interface IpLinkXdp {
  mode?: number;
  prog?: { id?: number; name?: string };
  attached?: { mode?: number; prog?: { id?: number; name?: string } }[];
}

function ip(args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** The XDP programs attached to `ifname`, or null if there is no such interface. */
export function attachedPrograms(ifname: string): AttachedProgram[] | null {
  let text: string;
  try {
    text = ip(['-j', '-d', 'link', 'show', 'dev', ifname]);
  } catch (error) {
    const stderr = String((error as { stderr?: string }).stderr ?? '');
    if (/does not exist/.test(stderr)) return null;
    throw new Error(`ip link show dev ${ifname}: ${stderr.trim() || (error as Error).message}`);
  }
  const links = JSON.parse(text) as { xdp?: IpLinkXdp }[];
  const xdp = links[0]?.xdp;
  if (!xdp) return [];
  const entries = xdp.attached ?? (xdp.prog ? [{ mode: xdp.mode, prog: xdp.prog }] : []);
  return entries.map((e) => ({
    mode: MODE_KEYWORDS[e.mode ?? 0] ?? `mode ${e.mode}`,
    id: e.prog?.id ?? 0,
    name: e.prog?.name ?? '',
  }));
}

export interface DetachReport {
  ifname: string;
  /** absent: no such interface; clear: nothing attached (any more); left: something stays attached. */
  state: 'absent' | 'clear' | 'left';
  detached: AttachedProgram[];
  left: (AttachedProgram & { reason: string })[];
}

/** Detaches our program (or, with all, every program) from one interface. */
export function detachInterface(ifname: string, all: boolean): DetachReport {
  const before = attachedPrograms(ifname);
  if (before === null) return { ifname, state: 'absent', detached: [], left: [] };
  const detached: AttachedProgram[] = [];
  const left: (AttachedProgram & { reason: string })[] = [];
  for (const program of before) {
    if (!all && program.name === '') {
      left.push({ ...program, reason: 'its name cannot be read without CAP_SYS_ADMIN (run as root, or use --all)' });
      continue;
    }
    if (!all && program.name !== STEER_PROGRAM_NAME) {
      left.push({ ...program, reason: `not ${STEER_PROGRAM_NAME} (use --all to remove it)` });
      continue;
    }
    if (!Object.values(MODE_KEYWORDS).includes(program.mode)) {
      left.push({ ...program, reason: `unknown attach ${program.mode}` });
      continue;
    }
    try {
      ip(['link', 'set', 'dev', ifname, program.mode, 'off']);
    } catch (error) {
      left.push({ ...program, reason: String((error as { stderr?: string }).stderr ?? (error as Error).message).trim() });
      continue;
    }
    // `ip link set ... off` answers 0 even when a live BPF link keeps the program: look again.
    const still = (attachedPrograms(ifname) ?? []).some((p) => p.id === program.id && p.mode === program.mode);
    if (still) left.push({ ...program, reason: 'still attached (held by a BPF link of a running process?)' });
    else detached.push(program);
  }
  return { ifname, state: left.length > 0 ? 'left' : 'clear', detached, left };
}

/** The command: one line per interface on stdout; exit 0 when every interface is clear or absent. */
export function xdpDetachCommand(configFile: string, all: boolean): number {
  const config = loadConfigFile(configFile);
  const interfaces = [...new Set(config.ports.filter((p) => p.type === 'afxdp').map((p) => p.interface))];
  let failed = false;
  for (const ifname of interfaces) {
    const r = detachInterface(ifname, all);
    const parts: string[] = [];
    if (r.state === 'absent') parts.push('no such interface');
    for (const p of r.detached) parts.push(`detached ${p.name || '?'} (id ${p.id}, ${p.mode})`);
    for (const p of r.left) parts.push(`left ${p.name || '?'} (id ${p.id}, ${p.mode}): ${p.reason}`);
    if (parts.length === 0) parts.push('no XDP program');
    console.log(`${ifname}: ${parts.join('; ')}`);
    // A foreign program left alone on purpose is not a failure; one of ours (or one whose name could
    // not be read) that stays is.
    if (r.left.some((p) => all || p.name === STEER_PROGRAM_NAME || p.name === '')) failed = true;
  }
  return failed ? 1 : 0;
}
