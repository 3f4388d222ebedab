// Verdicts with packets, and the only way a system test may say "dropped".
//
// A drop is silence: a probe that heard nothing before its timeout. Silence
// proves nothing alone (a server that is not there, a route that is missing,
// a FORWARD policy someone else set are silent too), so every must-drop comes
// with its control, in the same test: the same probe (the same object, run
// the same way), with the rule taken away or before it was loaded, gets
// through. A probe that could not run (a container that never started, a
// client the harness had to kill) throws or reports "hung": an error, never a
// drop. test/unit/system-tests-lint.test.ts fails on a drop asserted any
// other way. DOCKINIT_VERDICT_DEBUG=1 prints every round's probes and times.
import { expect } from "vitest";
import type { ConnectResult } from "./topology.js";

/** One connection attempt that can be repeated exactly. */
export interface Probe {
  /** What it tries, in words: "198.51.100.50 → 192.0.2.2:8080/tcp (IPv4 DNAT)". */
  what: string;
  /** One attempt. Throws when the probe itself could not run. */
  run(): Promise<ConnectResult>;
  /**
   * When it gets through: the address the server must have seen (the
   * client's own one through DNAT, a gateway through docker-proxy): which
   * path the packets took, not only that they arrived.
   */
  peer?: string;
}

export const probe = (what: string, run: () => Promise<ConnectResult>, peer?: string): Probe => ({ what, run, ...(peer === undefined ? {} : { peer }) });

/** What each probe got, in one round, in one test: a control taken before the rule was in force. */
export interface Observation {
  test: string | undefined;
  results: Map<Probe, ConnectResult>;
}

/** Takes the rule (or all of dockinit) away; resolves to what puts it back. */
export type Without = () => Promise<() => Promise<void>>;

export interface DropOptions {
  /**
   * The control: the same probes with the rule taken away (`without`), or an
   * observe() of them earlier in this test, before the rule was in force.
   */
  control: Without | Observation;
}

export interface VerdictOptions {
  /** Before each round of probes (e.g. forget conntrack state); never during one. */
  beforeRound?: () => Promise<void>;
  /** Probes in flight at once (default 8): a round costs one timeout, not one per probe. */
  concurrency?: number;
}

const describeResult = (r: ConnectResult): string =>
  r.ok ? `through (${r.peerAddr === undefined ? JSON.stringify(r.reply) : `the server saw ${r.peerAddr}`}, ${r.durationMs} ms)` : `${r.reason} after ${r.durationMs} ms: ${r.detail}`;

/** "through", "dropped", or why the result is neither (a refusal, a hang, another path). */
export function verdictOf(p: Probe, r: ConnectResult): "through" | "dropped" | string {
  if (r.ok) return p.peer === undefined || r.peerAddr === p.peer ? "through" : `through another path: the server saw ${String(r.peerAddr)}, not ${p.peer}`;
  if (r.reason === "timeout") return "dropped";
  return `neither through nor dropped: ${describeResult(r)}`;
}

async function pool<T, R>(items: readonly T[], limit: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  const errors: unknown[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let i = next++; i < items.length; i = next++) {
      try {
        out[i] = await fn(items[i] as T);
      } catch (e) {
        errors.push(e);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  if (errors.length > 0) throw errors[0];
  return out;
}

const currentTest = (): string | undefined => expect.getState().currentTestName;

/** What one call asserts: probes that must get through, be dropped (beside their control), or get the same verdict without dockinit's rules. */
export interface Expected {
  through?: readonly Probe[];
  dropped?: readonly Probe[];
  /** The same verdict with the rule as without it (someone else's rules decide): needs a `without` control. */
  same?: readonly Probe[];
}

export function verdicts(opts: VerdictOptions = {}) {
  const concurrency = opts.concurrency ?? 8;
  const round = async (probes: readonly Probe[]): Promise<ConnectResult[]> => {
    if (probes.length === 0) return [];
    await opts.beforeRound?.();
    const t0 = Date.now();
    const rs = await pool(probes, concurrency, (p) => p.run());
    if (process.env.DOCKINIT_VERDICT_DEBUG) console.log(`round ${Date.now() - t0} ms: ${rs.map((r, i) => `${probes[i]!.what} ${r.ok ? "ok" : r.reason} ${r.durationMs}`).join(" | ")}`);
    return rs;
  };
  const list = (p: Probe | readonly Probe[] | undefined): readonly Probe[] => (p === undefined ? [] : Array.isArray(p) ? (p as readonly Probe[]) : [p as Probe]);

  /**
   * One round with the rules in force (every probe at once), then, for the
   * drops and the `same` probes, one round without the rule (the control).
   * Each probe is reported when any fails.
   */
  const expectVerdicts = async (want: Expected, control?: DropOptions): Promise<void> => {
    const through = list(want.through);
    const dropped = list(want.dropped);
    const same = list(want.same);
    if (through.length + dropped.length + same.length === 0) throw new Error("expectVerdicts: no probes");
    if ((dropped.length > 0 || same.length > 0) && control === undefined) throw new Error("expectVerdicts: a drop needs its control");
    const c = control?.control;
    if (same.length > 0 && typeof c !== "function") throw new Error("expectVerdicts: `same` needs the rule taken away (a `without` control)");
    const all = [...through, ...dropped, ...same];
    const withRules = await round(all);
    const got = new Map(all.map((p, i) => [p, withRules[i] as ConnectResult]));
    const controls = new Map<Probe, ConnectResult>();
    const again = [...dropped, ...same];
    if (typeof c === "function" && again.length > 0) {
      const restore = await c();
      try {
        const rs = await round(again);
        again.forEach((p, i) => controls.set(p, rs[i] as ConnectResult));
      } finally {
        await restore();
      }
    } else if (c !== undefined && typeof c !== "function" && dropped.length > 0) {
      if (c.test !== currentTest()) throw new Error(`expectDropped: the control was observed in another test (${String(c.test)}), not this one`);
      for (const p of dropped) {
        const r = c.results.get(p);
        if (!r) throw new Error(`expectDropped: no control observed for ${p.what} (the same probe object, before the rule)`);
        controls.set(p, r);
      }
    }
    const lines: { ok: boolean; text: string }[] = [];
    for (const p of through) {
      const v = verdictOf(p, got.get(p)!);
      lines.push({ ok: v === "through", text: `${p.what}: ${v === "through" ? "through" : `NOT THROUGH: ${v === "dropped" ? describeResult(got.get(p)!) : v}`}` });
    }
    for (const p of dropped) {
      const d = verdictOf(p, got.get(p)!);
      const k = verdictOf(p, controls.get(p)!);
      lines.push({
        ok: d === "dropped" && k === "through",
        text: `${p.what}: ${d === "dropped" ? "dropped" : `NOT DROPPED: ${d === "through" ? describeResult(got.get(p)!) : d}`}; control ${k === "through" ? "through" : `FAILED: ${k === "dropped" ? describeResult(controls.get(p)!) : k}`}`,
      });
    }
    for (const p of same) {
      // Through, dropped, or the kind of failure: the verdict, not its timing.
      const kind = (r: ConnectResult) => (r.ok ? "through" : r.reason === "timeout" ? "dropped" : r.reason);
      const [a, b] = [kind(got.get(p)!), kind(controls.get(p)!)];
      lines.push({ ok: a === b, text: `${p.what}: ${a} with dockinit's rules, ${b} without${a === b ? "" : ": NOT THE SAME"}` });
    }
    expect(lines.filter((l) => !l.ok).map((l) => l.text), lines.map((l) => l.text).join("\n")).toEqual([]);
  };

  return {
    /** Run probes now and keep what they got: a control for expectDropped later in this test. */
    async observe(probes: Probe | readonly Probe[]): Promise<Observation> {
      const ps = list(probes);
      const rs = await round(ps);
      return { test: currentTest(), results: new Map(ps.map((p, i) => [p, rs[i] as ConnectResult])) };
    },
    /** Every probe gets through (by the path its `peer` names). */
    expectThrough: (probes: Probe | readonly Probe[]): Promise<void> => expectVerdicts({ through: list(probes) }),
    /**
     * Every probe is dropped (silence until its timeout), and its control,
     * the same probe without the rule, gets through.
     */
    expectDropped: (probes: Probe | readonly Probe[], control: DropOptions): Promise<void> => expectVerdicts({ dropped: list(probes) }, control),
    expectVerdicts,
  };
}
