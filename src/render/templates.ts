// The Handlebars runtime with dockinit's helpers. Templates arrive precompiled
// (noEscape, strict); only helpers below may shape values, and `sh` is the one
// way a value reaches shell code as a word.
import type HandlebarsFull from "handlebars";
import HandlebarsRuntime from "handlebars/runtime.js";
import firewallIptables from "../../templates/firewall/iptables.sh.hbs";
import firewallNftables from "../../templates/firewall/nftables.sh.hbs";
import preludePartial from "../../templates/firewall/partials/prelude.sh.hbs";
import externalInterfacePartial from "../../templates/firewall/partials/externalInterface.sh.hbs";
import egressEntriesPartial from "../../templates/firewall/partials/egressEntries.sh.hbs";
import proxyPortsPartial from "../../templates/firewall/partials/proxyPorts.sh.hbs";
import hostRangePartial from "../../templates/firewall/partials/hostRange.sh.hbs";
import dockerEnginePartial from "../../templates/firewall/partials/dockerEngine.sh.hbs";
import lockPartial from "../../templates/firewall/partials/lock.sh.hbs";
import engineGapsPartial from "../../templates/firewall/partials/engineGaps.sh.hbs";
import statusPartial from "../../templates/firewall/partials/status.sh.hbs";
import checkerPartial from "../../templates/firewall/partials/checker.sh.hbs";
import vpcDnsScript from "../../templates/dockinit-vpc-dns.sh.hbs";
import bootScript from "../../templates/dockinit-boot.sh.hbs";
import firewallUnit from "../../templates/dockinit-firewall.service.hbs";
import watchUnit from "../../templates/dockinit-firewall-watch.service.hbs";
import vpcDnsUnit from "../../templates/dockinit-vpc-dns.service.hbs";
import proxyScript from "../../templates/dockinit-proxy.sh.hbs";

// The runtime build has the same API minus the compiler; its bundled typings
// are empty, so borrow the full package's types.
const hbs = (HandlebarsRuntime as unknown as typeof HandlebarsFull).create();

/** Quote any string as one POSIX shell word: 'it'\''s' */
export function shellQuote(value: unknown): string {
  const s = String(value);
  if (s.includes("\0")) throw new Error("a NUL byte cannot be passed to shell");
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

hbs.registerHelper("sh", (value: unknown) => shellQuote(value));
hbs.registerHelper("eq", (a: unknown, b: unknown) => a === b);
hbs.registerHelper("concat", (...args: unknown[]) => args.slice(0, -1).map(String).join(""));

// What both firewall backends share, written once: `{{> name}}` in either file.
const firewallPartials = {
  prelude: preludePartial,
  externalInterface: externalInterfacePartial,
  egressEntries: egressEntriesPartial,
  proxyPorts: proxyPortsPartial,
  hostRange: hostRangePartial,
  dockerEngine: dockerEnginePartial,
  lock: lockPartial,
  engineGaps: engineGapsPartial,
  status: statusPartial,
  checker: checkerPartial,
};
for (const [name, spec] of Object.entries(firewallPartials)) hbs.registerPartial(name, hbs.template(spec));

const compiled = {
  // One file per backend: a reader of one backend reads one file.
  firewallIptables: hbs.template(firewallIptables),
  firewallNftables: hbs.template(firewallNftables),
  vpcDnsScript: hbs.template(vpcDnsScript),
  bootScript: hbs.template(bootScript),
  firewallUnit: hbs.template(firewallUnit),
  watchUnit: hbs.template(watchUnit),
  vpcDnsUnit: hbs.template(vpcDnsUnit),
  proxyScript: hbs.template(proxyScript),
};

export type TemplateName = keyof typeof compiled;

export function renderTemplate(name: TemplateName, data: object): string {
  // Sections a config does not use leave their blank separators behind: one
  // blank line between blocks is enough. (No template's data holds a blank
  // line that matters: rule payloads and rulesets have none.)
  return compiled[name](data).replace(/\n{3,}/g, "\n\n");
}
