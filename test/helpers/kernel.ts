/**
 * Rig tests need root (or CAP_BPF + CAP_NET_ADMIN), iproute2 and the built addon and BPF objects.
 * Where those are missing they skip, unless XDP_TS_REQUIRE_KERNEL=1 (CI), where they fail instead.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ADDON_PATH } from '../../src/native';
import { STEER_OBJECT } from '../../src/vport-afxdp';

export const REQUIRE_KERNEL = process.env.XDP_TS_REQUIRE_KERNEL === '1';

function missing(): string | null {
  if (process.getuid?.() !== 0) return 'not root';
  try {
    execFileSync('ip', ['netns', 'list'], { stdio: 'ignore' });
  } catch {
    return 'iproute2 (ip netns) unavailable';
  }
  if (!fs.existsSync(ADDON_PATH)) return `addon not built (${ADDON_PATH})`;
  if (!fs.existsSync(STEER_OBJECT)) return `BPF object not built (${STEER_OBJECT})`;
  return null;
}

/** Options for node:test: skip with the reason, unless the kernel is required. */
export function kernelTestOptions(): { skip?: string } {
  const reason = missing();
  if (reason === null || REQUIRE_KERNEL) return {};
  return { skip: `needs the kernel: ${reason} (set XDP_TS_REQUIRE_KERNEL=1 to fail instead)` };
}

export const DIST = path.join(__dirname, '..', '..');
