// The host's own record (issue 30): after each check the checker runs
// `dockinit-firewall record`, which writes status --json to
// $STATE_DIR/status.json and, where node_exporter's textfile collector reads,
// dockinit.prom. Stubbed kernel tools (test/support/stub-host.ts).
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadConfigString, renderBundle } from "../../src/index.js";
import { HOST_PATHS } from "../../src/host-paths.js";
import { stubHost } from "../support/stub-host.js";

// The nftables backend's script: record and status are one partial both backends share
// (the plain stub host keeps no iptables tables between runs; status.test.ts has a host that does).
describe.each(["nftables"])("%s backend: dockinit-firewall record", (backend) => {
  it("writes status.json and dockinit.prom after a check: ok 1 with the rules in place, 0 once they are gone, the re-applies counted", async () => {
    const { bundle } = renderBundle(loadConfigString(`version: 1\nname: record\nfirewall: { backend: ${backend} }\n`));
    const host = stubHost();
    const textfiles = mkdtempSync(join(tmpdir(), "dockinit-textfile-"));
    const env = { DOCKINIT_TEXTFILE_DIR: textfiles };
    try {
      host.install(bundle!);
      expect((await host.run(HOST_PATHS.firewallScript, ["apply"])).code).toBe(0);
      // Before any record: nothing there (the control for what follows).
      expect(existsSync(join(host.state, "status.json"))).toBe(false);
      expect(readdirSync(textfiles)).toEqual([]);

      const r = await host.run(HOST_PATHS.firewallScript, ["record"], { env });
      expect(r.code, r.stderr).toBe(0);
      const json = JSON.parse(readFileSync(join(host.state, "status.json"), "utf8")) as { ok: boolean; bundle: string };
      expect(json).toMatchObject({ ok: true, bundle: bundle!.bundleId });
      const id = bundle!.bundleId;
      const prom = () => readFileSync(join(textfiles, "dockinit.prom"), "utf8");
      expect(prom()).toContain(`dockinit_firewall_ok{bundle="${id}"} 1\n`);
      expect(prom()).toContain(`dockinit_firewall_reapplied_total{bundle="${id}"} 0\n`);
      expect(prom()).toMatch(new RegExp(`^dockinit_firewall_checked_timestamp_seconds\\{bundle="${id}"\\} \\d{10}$`, "m"));
      // Only the finished file: no temporary left for node_exporter to half-read.
      expect(readdirSync(textfiles)).toEqual(["dockinit.prom"]);

      // The rules gone and two re-applies on record: the next record says so.
      rmSync(join(host.root, "nft-loaded"), { force: true });
      writeFileSync(join(host.state, "reapply"), "2 1796000000 TABLE_MISSING nftables: table inet dockinit is missing\n");
      expect((await host.run(HOST_PATHS.firewallScript, ["record"], { env })).code).toBe(0);
      expect(JSON.parse(readFileSync(join(host.state, "status.json"), "utf8"))).toMatchObject({ ok: false, reapplied: { count: 2 } });
      expect(prom()).toContain(`dockinit_firewall_ok{bundle="${id}"} 0\n`);
      expect(prom()).toContain(`dockinit_firewall_reapplied_total{bundle="${id}"} 2\n`);
    } finally {
      host.cleanup();
      rmSync(textfiles, { recursive: true, force: true });
    }
  });
});
