// The Handlebars runtime with dockinit's helpers. Templates arrive precompiled
// (noEscape, strict); only helpers below may shape values, and `sh` is the one
// way a value reaches shell code as a word.
import type HandlebarsFull from "handlebars";
import HandlebarsRuntime from "handlebars/runtime.js";
import firewallScript from "../../templates/dockinit-firewall.sh.hbs";
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

const compiled = {
  firewallScript: hbs.template(firewallScript),
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
