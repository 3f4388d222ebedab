// The host's own record (issue 30): after each check the checker runs
// `dockinit-firewall record`, which writes status --json to
// $STATE_DIR/status.json and, where node_exporter's textfile collector reads,
// dockinit.prom. Stubbed kernel tools (test/support/stub-host.ts).
import { chmodSync, existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadConfigString, renderBundle } from "../../src/index.js";
import { HOST_PATHS } from "../../src/host-paths.js";
import { stubHost } from "../support/stub-host.js";
import { skipUnless } from "../support/system.js";

// The nftables backend's script: record and status are one partial both backends share
// (the plain stub host keeps no iptables tables between runs; status.test.ts has a host that does).
// Root: the textfile directory must be root's (the script checks its owner against its own uid).
describe.skipIf(skipUnless(["root"])).each(["nftables"])("%s backend: dockinit-firewall record", (backend) => {
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
      expect(r.stderr).toBe("");
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

  it("writes no metrics into a directory others can write, and follows no link planted there", async () => {
    const { bundle } = renderBundle(loadConfigString(`version: 1\nname: record\nfirewall: { backend: ${backend} }\n`));
    const host = stubHost();
    const textfiles = mkdtempSync(join(tmpdir(), "dockinit-textfile-"));
    const victim = join(mkdtempSync(join(tmpdir(), "dockinit-victim-")), "secret");
    writeFileSync(victim, "secret\n", { mode: 0o600 });
    try {
      host.install(bundle!);
      expect((await host.run(HOST_PATHS.firewallScript, ["apply"])).code).toBe(0);
      // A directory anyone can write (the exporter's user, a 0777 one): refused, said, nothing written.
      chmodSync(textfiles, 0o777);
      const open = await host.run(HOST_PATHS.firewallScript, ["record"], { env: { DOCKINIT_TEXTFILE_DIR: textfiles } });
      expect(open.code).toBe(0);
      expect(open.stderr).toContain("must be root's and writable by root alone");
      expect(readdirSync(textfiles)).toEqual([]);
      // A link where dockinit.prom goes: not followed, the file it names untouched.
      chmodSync(textfiles, 0o755);
      symlinkSync(victim, join(textfiles, "dockinit.prom"));
      expect((await host.run(HOST_PATHS.firewallScript, ["record"], { env: { DOCKINIT_TEXTFILE_DIR: textfiles } })).code).toBe(0);
      expect(readFileSync(victim, "utf8")).toBe("secret\n");
      expect(lstatSync(victim).mode & 0o777).toBe(0o600);
      // Control: the same directory without the link gets the metrics.
      rmSync(join(textfiles, "dockinit.prom"));
      expect((await host.run(HOST_PATHS.firewallScript, ["record"], { env: { DOCKINIT_TEXTFILE_DIR: textfiles } })).code).toBe(0);
      expect(readFileSync(join(textfiles, "dockinit.prom"), "utf8")).toContain("dockinit_firewall_ok{");
    } finally {
      host.cleanup();
      rmSync(textfiles, { recursive: true, force: true });
    }
  });
});
