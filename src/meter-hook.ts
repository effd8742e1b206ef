/**
 * What the action executor needs from the meters: one call per packet through `meter(id)`.
 * `admit` returns true when the packet passes (no band applies, or no meter has that id) and false
 * when a DROP band applies; it charges the meter either way. Implemented by MeterBank (meter.ts).
 */
export interface MeterHook {
  admit(meterId: number, bytes: number, nowMs: number): boolean;
}
