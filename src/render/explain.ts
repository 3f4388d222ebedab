// `dockinit explain`: the firewall a config produces, each rule next to what
// it means in plain words. The words come with the rule itself (rule-model.ts),
// printed beside the same line the script loads: nothing parses a rule back.
import type { Model } from "../model.js";
import { EXT_IF, nftSets, planFirewall } from "./firewall-rules.js";
import { nftRuleset } from "./print-nft.js";

export function explainFirewall(model: Model): string {
  const plan = planFirewall(model);
  const ext = model.firewall.externalInterface === "auto" ? "<default route's interface>" : model.firewall.externalInterface;
  const out = [`# firewall of "${model.name}" (backend ${model.firewall.backend}, external interface ${ext})`, ""];
  for (const line of plan.summary) out.push(`- ${line}`);
  for (const fam of plan.iptables) {
    for (const t of fam.tables) {
      out.push("", `## IPv${fam.family} ${t.table}`);
      for (const j of t.jumps) out.push(`${j.spec}    # first in ${j.parent}`);
      t.rules.forEach((rule, i) => out.push(`${rule.replaceAll(EXT_IF, ext)}    # ${t.means[i]}`));
    }
  }
  // The ruleset as loaded, each rule followed by its words as an nft comment.
  if (plan.nft) out.push("", "## nftables", nftRuleset(plan.rules, nftSets(model), true).full.replaceAll(EXT_IF, ext).trimEnd());
  if (plan.forwardAccepts.length > 0) {
    out.push("", "## iptables (first in DOCKER-USER when FORWARD jumps there, else first in a FORWARD that drops)");
    for (const a of plan.forwardAccepts) out.push(`${a.family === 4 ? "iptables" : "ip6tables"} -I DOCKER-USER ${a.spec}    # ${a.means}`);
  }
  return `${out.join("\n")}\n`;
}
