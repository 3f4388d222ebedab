// firewall.backend: auto, seen from the outside: which backend a config gets,
// what explain and the shipped status say about it, and what the bundle
// installs and runs for it. Table-driven: one row per way of asking.
import { describe, expect, it } from "vitest";
import { STARTER_CONFIG } from "../../src/config/default.js";
import { loadConfigString, loadDefaultConfig, renderBundle, type Bundle } from "../../src/index.js";
import { explainFirewall } from "../../src/render/explain.js";

const FIREWALL = "/usr/local/sbin/dockinit-firewall";
const BOOT = "/usr/local/sbin/dockinit-boot";
const WATCH = "/etc/systemd/system/dockinit-firewall-watch.service";
const FORWARD = "port_forwards:\n  - { listen: 9000, to: 198.51.100.10:80 }\n";

const rows: { name: string; yaml: string; backend: "iptables" | "nftables"; why: RegExp }[] = [
  { name: "nothing said", yaml: "version: 1\n", backend: "nftables", why: /chosen by auto: its chain runs before Docker's rules/ },
  { name: "auto", yaml: "version: 1\nfirewall: { backend: auto }\n", backend: "nftables", why: /chosen by auto/ },
  { name: "auto with port forwards", yaml: `version: 1\n${FORWARD}`, backend: "iptables", why: /chosen by auto: port forwards cross iptables' FORWARD/ },
  { name: "iptables asked for", yaml: "version: 1\nfirewall: { backend: iptables }\n", backend: "iptables", why: /as firewall\.backend asks/ },
  { name: "nftables asked for, with port forwards", yaml: `version: 1\nfirewall: { backend: nftables }\n${FORWARD}`, backend: "nftables", why: /as firewall\.backend asks/ },
];

function render(yaml: string): { bundle: Bundle; explain: string } {
  const loaded = loadConfigString(yaml);
  if (!loaded.model) throw new Error(JSON.stringify(loaded.diagnostics));
  const { bundle } = renderBundle(loaded);
  if (!bundle) throw new Error("no bundle");
  return { bundle, explain: explainFirewall(loaded.model) };
}
const file = (b: Bundle, path: string) => b.files.find((f) => f.path === path)?.content;

describe("firewall.backend: auto", () => {
  it.each(rows)("$name → $backend, and explain and status say why", ({ yaml, backend, why }) => {
    const { bundle, explain } = render(yaml);
    const header = explain.split("\n")[0]!;
    expect(header).toContain(`(backend ${backend},`);
    const line = explain.split("\n").find((l) => l.startsWith(`- backend ${backend}: `));
    expect(line, explain).toMatch(why);
    // The shipped script carries that backend, and status prints the same sentence.
    const script = file(bundle, FIREWALL)!;
    expect(script).toMatch(new RegExp(`^readonly BACKEND='${backend}'$`, "m"));
    expect(script).toMatch(new RegExp(`<<'DOCKINIT_SUMMARY'\n(.*\n)*${line!.slice(2).replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}\n`));
    // The watch exists only for the iptables backend (nftables has nothing to re-assert).
    expect(file(bundle, WATCH) !== undefined).toBe(backend === "iptables");
    // dockinit-boot installs nft where it is missing, by apt's and dnf's names.
    const boot = file(bundle, BOOT)!;
    const installsNft = /^need 'nft' 'nftables' 'nftables' /m;
    if (backend === "nftables") expect(boot).toMatch(installsNft);
    else expect(boot).not.toContain("'nft'");
  });

  it("the built-in default and the starter config that init writes both get nftables", () => {
    expect(STARTER_CONFIG).toMatch(/^ {2}backend: auto\b/m);
    const starter = loadConfigString(STARTER_CONFIG).model!;
    expect(starter.firewall.backendChoice).toMatchObject({ requested: "auto" });
    expect(starter.firewall.backend).toBe("nftables");
    const builtIn = loadDefaultConfig().model!;
    expect(builtIn.firewall.backend).toBe("nftables");
  });
});
