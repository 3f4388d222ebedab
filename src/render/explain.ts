// `dockinit explain`: the firewall a config produces, each rule next to what
// it means in plain words. The words come with the rule itself (rule-model.ts),
// printed beside the same line the script loads: nothing parses a rule back.
import type { Model } from "../model.js";
import { externalWords, NAT6, nftSets, planFirewall } from "./firewall-rules.js";
import { FILTER, NAT, nftLine, nftRuleset } from "./print-nft.js";

/** A line as loaded: a rule loaded only under a condition (its words say which) without the script's mark. */
const loaded = (line: string): string => line.replaceAll(NAT6, "");

export function explainFirewall(model: Model): string {
  const plan = planFirewall(model);
  const out = [`# firewall of "${model.name}" (backend ${model.firewall.backend}, external interfaces: ${externalWords(model)})`, ""];
  for (const line of plan.summary) out.push(`- ${line}`);
  for (const fam of plan.iptables) {
    for (const t of fam.tables) {
      out.push("", `## IPv${fam.family} ${t.table}`);
      for (const j of t.jumps) out.push(`${j.spec}    # first in ${j.parent}`);
      t.rules.forEach((rule, i) => out.push(`${loaded(rule)}    # ${t.means[i]}`));
    }
  }
  // The ruleset as loaded, each rule followed by its words as an nft comment.
  if (plan.nft) out.push("", "## nftables", loaded(nftRuleset(plan.rules, nftSets(model), true).full).trimEnd());
  if (plan.forwardAccepts.length > 0) {
    out.push("", "## iptables (first in DOCKER-USER when FORWARD jumps there, else first in a FORWARD that drops)");
    for (const a of plan.forwardAccepts) out.push(`${a.family === 4 ? "iptables" : "ip6tables"} -I DOCKER-USER ${a.spec}    # ${a.means}`);
  }
  return `${out.join("\n")}\n`;
}

/** One rule as `explain --json` gives it: where it is loaded, the line as loaded, and its words. */
export interface ExplainedRule {
  backend: "nftables" | "iptables";
  /** nft: "inet dockinit"; iptables: "nat" or "filter". */
  table: string;
  chain: string;
  /** nft's inet table serves both families; an iptables line is loaded by iptables (4) or ip6tables (6). */
  family: "inet" | 4 | 6;
  /** The line as the script loads it (nft: inside its chain; iptables: an iptables-restore line). */
  line: string;
  means: string;
  /** Where the line goes when it is not one of dockinit's own chains' rules: "jump" (first in a built-in chain), "forward-accept" (first in DOCKER-USER/FORWARD). */
  kind: "rule" | "jump" | "forward-accept";
}

export interface ExplainedFirewall {
  name: string;
  backend: "nftables" | "iptables";
  /** "auto" (every interface but lo, Docker's bridges and veths) or the names given. */
  externalInterface: "auto" | string[];
  summary: string[];
  rules: ExplainedRule[];
}

/** `explain --json`: the same rules as the text listing, as data. */
export function explainFirewallData(model: Model): ExplainedFirewall {
  const plan = planFirewall(model);
  const rules: ExplainedRule[] = [];
  for (const fam of plan.iptables) {
    for (const t of fam.tables) {
      for (const j of t.jumps) rules.push({ backend: "iptables", table: t.table, chain: j.parent, family: fam.family, line: j.spec, means: `first in ${j.parent}: jump to ${j.chain}`, kind: "jump" });
      // "-A CHAIN …" is how print-iptables.ts writes every line: the chain is its second word.
      t.rules.forEach((line, i) => rules.push({ backend: "iptables", table: t.table, chain: line.split(" ")[1]!, family: fam.family, line: loaded(line), means: t.means[i]!, kind: "rule" }));
    }
  }
  if (plan.nft) {
    // In the order the table lists them: chain by chain, nat's first.
    for (const chain of [...NAT, ...FILTER]) for (const r of plan.rules.filter((x) => x.chain === chain)) rules.push({ backend: "nftables", table: "inet dockinit", chain: r.chain, family: "inet", line: loaded(nftLine(r)), means: r.means, kind: "rule" });
  }
  for (const a of plan.forwardAccepts) {
    rules.push({ backend: "iptables", table: "filter", chain: "DOCKER-USER", family: a.family, line: `-I DOCKER-USER ${a.spec}`, means: a.means, kind: "forward-accept" });
  }
  return { name: model.name, backend: model.firewall.backend === "iptables" ? "iptables" : "nftables", externalInterface: model.firewall.externalInterfaces, summary: plan.summary, rules };
}
