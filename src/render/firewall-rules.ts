// The rule sets dockinit-firewall loads, generated as data at render time:
// iptables-restore lines per family and table, the jumps that must sit first
// in the built-in chains, and the equivalent nftables ruleset. Nothing here is
// shell: the script template embeds these lines in quoted here-documents, and
// every value in them was parsed (CIDRs, ports) before it got here.
// iptables rules are written in iptables-save's canonical form (option order
// -s -d -i -o -p, then matches, then the target), so the script can compare a
// saved chain with them line for line (status, and apply's no-op fast path).
import type { Family } from "../config/net.js";
import type { Model } from "../model.js";

/** Replaced on the host by the external interface found at apply time. */
export const EXT_IF = "@EXT_IF@";

export interface Jump {
  /** Built-in (or Docker's) chain the jump lives in, e.g. POSTROUTING. */
  parent: string;
  /** The rule exactly as `iptables -S` prints it, e.g. "-A POSTROUTING -j DOCKINIT-POSTROUTING". */
  spec: string;
  chain: string;
}

export interface TableRules {
  table: "nat" | "filter";
  /** dockinit's own chains, declared (and so flushed) by the restore. */
  chains: string[];
  /** "-A CHAIN ..." lines, in order. */
  rules: string[];
  jumps: Jump[];
}

export interface FamilyRules {
  family: Family;
  tables: TableRules[];
}

export interface FirewallPlan {
  iptables: FamilyRules[];
  /** `nft -f` input for the nftables backend (empty when not used). */
  nft: string;
  /** Human-readable summary lines, one per policy (for `status` and `explain`). */
  summary: string[];
}

/** A port range as iptables-save prints it: "a:b" / "a-b", or "a" when a = b. */
const span = (r: { low: number; high: number }, sep: string) => (r.low === r.high ? String(r.low) : `${r.low}${sep}${r.high}`);

const jump = (parent: string, chain: string): Jump => ({ parent, chain, spec: `-A ${parent} -j ${chain}` });

function ephemeralRules(model: Model, family: Family): string[] {
  const ep = model.ephemeral;
  if (!ep.enabled) return [];
  const sources = ep.sources.length === 0 ? [undefined] : ep.sources.filter((s) => s.family === family);
  if (sources.length === 0) return [];
  const out: string[] = [];
  for (const proto of ep.protocols) {
    for (const src of sources) {
      const s = src ? ` -s ${src.text}` : "";
      out.push(
        `-A DOCKINIT-POSTROUTING${s} -o ${EXT_IF} -p ${proto} -m ${proto} --sport ${span(ep.match, ":")} -j MASQUERADE --to-ports ${span(ep.to, "-")}`,
      );
    }
  }
  return out;
}

function familyRules(model: Model, family: Family): FamilyRules {
  const tables: TableRules[] = [];
  const nat = ephemeralRules(model, family);
  if (nat.length > 0) {
    tables.push({ table: "nat", chains: ["DOCKINIT-POSTROUTING"], rules: nat, jumps: [jump("POSTROUTING", "DOCKINIT-POSTROUTING")] });
  }
  return { family, tables };
}

function nftRuleset(model: Model): string {
  const ep = model.ephemeral;
  if (model.firewall.backend !== "nftables" || !ep.enabled) return "";
  const lines: string[] = [];
  for (const proto of ep.protocols) {
    const bySource = ep.sources.length === 0 ? [""] : ep.sources.map((s) => `${s.family === 4 ? "ip" : "ip6"} saddr ${s.text} `);
    for (const src of bySource) {
      lines.push(`\t\toifname "${EXT_IF}" ${src}${proto} sport ${ep.match.low}-${ep.match.high} masquerade to :${ep.to.low}-${ep.to.high}`);
    }
  }
  // srcnat - 10: an nftables nat chain at a lower priority runs before
  // iptables' nat POSTROUTING (priority srcnat), and the first chain that sets
  // up a NAT binding for a connection wins, so Docker's MASQUERADE can never
  // shadow this rule, however Docker re-orders its own chains.
  return [
    "table inet dockinit {",
    "\tchain postrouting {",
    "\t\ttype nat hook postrouting priority srcnat - 10; policy accept;",
    ...lines,
    "\t}",
    "}",
    "",
  ].join("\n");
}

/** "a, b, c and 997 more": summaries stay one readable line. */
function listSome(items: string[], max = 4): string {
  return items.length <= max ? items.join(", ") : `${items.slice(0, max).join(", ")} and ${items.length - max} more`;
}

function summarise(model: Model): string[] {
  const ep = model.ephemeral;
  if (!ep.enabled) return [];
  const src = ep.sources.length === 0 ? "any source" : listSome(ep.sources.map((s) => s.text));
  return [
    `ephemeral ports: ${ep.protocols.join("+")} from ${src} leaving by the external interface with source port ${ep.match.low}-${ep.match.high} is rewritten to ${ep.to.low}-${ep.to.high}`,
  ];
}

export function planFirewall(model: Model): FirewallPlan {
  const iptables = model.firewall.backend === "iptables" ? [familyRules(model, 4), familyRules(model, 6)] : [];
  return { iptables, nft: nftRuleset(model), summary: summarise(model) };
}
