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
  { name: "nothing said", yaml: "version: 1\n", backend: "nftables", why: /chosen by auto: runs before Docker's rules/ },
  { name: "auto", yaml: "version: 1\nfirewall: { backend: auto }\n", backend: "nftables", why: /chosen by auto/ },
  { name: "auto with port forwards (their accept goes into iptables' DOCKER-USER as well)", yaml: `version: 1\n${FORWARD}`, backend: "nftables", why: /chosen by auto: runs before Docker's rules/ },
  { name: "iptables asked for", yaml: "version: 1\nfirewall: { backend: iptables }\n", backend: "iptables", why: /as firewall\.backend asks/ },
  {
    name: "auto with port forwards, Docker running its nftables firewall",
    yaml: `version: 1\ndocker:\n  daemon:\n    settings: { firewall-backend: nftables }\n${FORWARD}`,
    backend: "nftables",
    why: /chosen by auto: Docker runs its nftables firewall/,
  },
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
    // The checker (the watch unit) exists for both backends: a flushed ruleset undoes either.
    expect(file(bundle, WATCH)).toMatch(/^ExecStart=\/usr\/local\/sbin\/dockinit-firewall watch$/m);
    // dockinit-boot installs nft where it is missing (the package has one name under apt and dnf).
    const boot = file(bundle, BOOT)!;
    const installsNft = /^need 'nft' 'nftables'$/m;
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

describe("Docker's nftables firewall (docker.daemon.settings firewall-backend: nftables): forwarding", () => {
  const SYSCTL = "/etc/sysctl.d/99-zz-dockinit-forwarding.conf";
  const rows: { name: string; settings: string; file: string | undefined }[] = [
    { name: "nftables firewall", settings: "{ firewall-backend: nftables }", file: "net.ipv4.ip_forward = 1\n" },
    { name: "nftables firewall with IPv6", settings: "{ firewall-backend: nftables, ipv6: true }", file: "net.ipv4.ip_forward = 1\nnet.ipv6.conf.all.forwarding = 1\n" },
    { name: "nftables firewall, forwarding turned off by the user", settings: "{ firewall-backend: nftables, ip-forward: false }", file: undefined },
    { name: "iptables firewall (Docker turns forwarding on itself)", settings: "{ firewall-backend: iptables }", file: undefined },
    { name: "no firewall-backend", settings: "{}", file: undefined },
  ];
  it.each(rows)("$name", ({ settings, file: expected }) => {
    const { bundle } = render(`version: 1\ndocker:\n  daemon:\n    settings: ${settings}\n`);
    const sysctl = file(bundle, SYSCTL);
    const boot = file(bundle, BOOT)!;
    if (expected === undefined) {
      expect(sysctl).toBeUndefined();
      expect(boot).not.toContain("sysctl");
      return;
    }
    expect(sysctl?.split("\n").filter((l) => !l.startsWith("#")).join("\n")).toBe(expected);
    // The first boot applies it before Docker is started or restarted (later boots: systemd-sysctl).
    const applied = boot.indexOf(`sysctl -q -p '${SYSCTL}'`);
    expect(applied).toBeGreaterThan(0);
    expect(applied).toBeLessThan(boot.indexOf("systemctl restart docker.service"));
    expect(applied).toBeLessThan(boot.indexOf("systemctl start docker.service"));
  });
});
