// The CLI from the outside: argv in; stdout, stderr and the exit code out.
// In-process for speed, and once as a real subprocess of the built bin.
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, copyFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { runCli } from "../../src/cli/main.js";
import { FIXTURES, REPO, SHARED_EXAMPLES } from "../support/fixtures.js";
import { nonEmpty, sharedExamplesPresent, skipUnless } from "../support/system.js";
import { chmodSync, lstatSync, readdirSync, statSync, symlinkSync } from "node:fs";

/** Every path under root with its type, mode and bytes: what "the same out/" means. */
function snapshotTree(root: string, rel = ""): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of readdirSync(join(root, rel)).sort()) {
    const p = join(rel, name);
    const st = lstatSync(join(root, p));
    if (st.isDirectory()) Object.assign(out, snapshotTree(root, p));
    else out[p] = `${st.isSymbolicLink() ? "link" : "file"} ${(st.mode & 0o777).toString(8)} ${st.isFile() ? readFileSync(join(root, p)).toString("base64") : ""}`;
  }
  return out;
}

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "dockinit-cli-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

async function cli(...argv: string[]) {
  let stdout = "";
  let stderr = "";
  const code = await runCli(argv, {
    stdout: (t) => (stdout += typeof t === "string" ? t : Buffer.from(t).toString("latin1")),
    stderr: (t) => (stderr += t),
    cwd: dir,
    env: {},
  });
  return { code, stdout, stderr };
}

/** package.json is the one source of the version (src/version.ts, esbuild's define). */
const PACKAGE_VERSION = (JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")) as { version: string }).version;

const BAD = "version: 1\nephemeral_ports:\n  to: 61000-49152\n";

describe("dockinit CLI", () => {
  it("render with no dockinit.yaml uses the built-in default and says so", async () => {
    const r = await cli("render");
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/built-in default/);
    expect(r.stdout).toMatch(/wrote out\/ .*of 16,384 bytes/);
    for (const f of ["user-data", "manifest.json", "files/etc/docker/daemon.json", "files/usr/local/sbin/dockinit-firewall", "files/etc/systemd/system/dockinit-firewall.service"]) {
      expect(existsSync(join(dir, "out", f)), f).toBe(true);
    }
  });

  it("the committed out/ is the built-in default bundle, byte for byte", async () => {
    await cli("render", "-o", "fresh");
    const manifest = readFileSync(join(dir, "fresh", "manifest.json"), "utf8");
    expect(manifest).toBe(readFileSync(join(REPO, "out", "manifest.json"), "utf8"));
    expect(readFileSync(join(dir, "fresh", "user-data")).equals(readFileSync(join(REPO, "out", "user-data")))).toBe(true);
  });

  it("render of a bad config exits 1, names file:line:col and code, and writes nothing", async () => {
    writeFileSync(join(dir, "dockinit.yaml"), BAD);
    const r = await cli("render", "-o", "out");
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("dockinit.yaml:3:7: error DI021");
    expect(r.stderr).toContain("hint:");
    expect(r.stderr).toMatch(/3 \| {3}to: 61000-49152\n\s+\| {7}\^/);
    expect(existsSync(join(dir, "out"))).toBe(false);
  });

  it("a failed render leaves an existing out/ untouched", async () => {
    await cli("render");
    const before = readFileSync(join(dir, "out", "manifest.json"), "utf8");
    writeFileSync(join(dir, "dockinit.yaml"), BAD);
    expect((await cli("render")).code).toBe(1);
    expect(readFileSync(join(dir, "out", "manifest.json"), "utf8")).toBe(before);
  });

  describe("re-rendering into an existing out/", () => {
    const firewall = "out/files/usr/local/sbin/dockinit-firewall";
    // Each case disturbs a rendered out/; the next render must restore it exactly.
    it.each<[string, () => void, "wrote" | "up to date:"]>([
      ["nothing changed: left alone", () => {}, "up to date:"],
      ["a file's bytes changed", () => writeFileSync(join(dir, firewall), "#!/bin/sh\nexit 0\n"), "wrote"],
      ["a file's mode changed", () => chmodSync(join(dir, firewall), 0o644), "wrote"],
      ["a file replaced by a symlink", () => (rmSync(join(dir, firewall)), symlinkSync("/bin/true", join(dir, firewall))), "wrote"],
    ])("%s", async (_name, disturb, said) => {
      await cli("render");
      const reference = snapshotTree(join(dir, "out"));
      const mtime = statSync(join(dir, "out", "user-data")).mtimeMs;
      disturb();
      const r = await cli("render");
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^${said} out/ `));
      expect(snapshotTree(join(dir, "out"))).toEqual(reference);
      if (said === "up to date:") expect(statSync(join(dir, "out", "user-data")).mtimeMs).toBe(mtime);
      expect(readdirSync(dir).filter((f) => f.includes(".tmp-") || f.includes(".old-"))).toEqual([]);
      expect(existsSync("/bin/true")).toBe(true);
    });

    // render owns only what it wrote (issue 27): whatever else is in the
    // folder makes it refuse, by name, with nothing written or removed.
    it.each<[string, () => void, string]>([
      ["a stray file added", () => writeFileSync(join(dir, "out", "files", "stray"), "x"), "files/stray"],
      ["a stray empty directory added", () => mkdirSync(join(dir, "out", "files", "empty")), "files/empty/"],
      ["a stray folder with files", () => (mkdirSync(join(dir, "out", "notes")), writeFileSync(join(dir, "out", "notes", "a.md"), "x")), "notes/"],
      ["its manifest removed (no manifest: nothing is known to be dockinit's)", () => rmSync(join(dir, "out", "manifest.json")), "files/"],
      ["its manifest no longer dockinit's", () => writeFileSync(join(dir, "out", "manifest.json"), JSON.stringify({ generator: "webpack", files: [] })), "manifest.json"],
      ["a manifest listing a path that climbs out", () => writeFileSync(join(dir, "out", "manifest.json"), JSON.stringify({ generator: "dockinit 0.1.0", files: [{ path: "/../../keep" }] })), "manifest.json"],
    ])("refused: %s", async (_name, disturb, named) => {
      await cli("render");
      disturb();
      const before = snapshotTree(join(dir, "out"));
      const r = await cli("render");
      expect(r.code).toBe(1);
      expect(r.stdout).toBe("");
      expect(r.stderr).toMatch(/^dockinit: error DI080: out\/ holds what dockinit did not write: /m);
      expect(r.stderr).toContain(named);
      expect(snapshotTree(join(dir, "out"))).toEqual(before);
      expect(readdirSync(dir).filter((f) => f.includes(".tmp-") || f.includes(".old-"))).toEqual([]);
    });

    it("out/ as a symlink to a folder holding other things: refused, the folder it names left as it was", async () => {
      mkdirSync(join(dir, "precious", "sub"), { recursive: true });
      writeFileSync(join(dir, "precious", "a.txt"), "keep");
      symlinkSync("precious", join(dir, "out"));
      const r = await cli("render");
      expect(r.code).toBe(1);
      expect(r.stderr).toContain("a.txt, sub/");
      expect(lstatSync(join(dir, "out")).isSymbolicLink()).toBe(true);
      expect(snapshotTree(join(dir, "precious"))).toEqual({ "a.txt": `file 644 ${Buffer.from("keep").toString("base64")}` });
      expect(existsSync(join(dir, "precious", "sub"))).toBe(true);
      expect(readdirSync(dir).sort()).toEqual(["out", "precious"]);
    });

    it("out/ as a symlink to an empty folder, then to a previous render: the bundle lands in that folder and the link stays", async () => {
      mkdirSync(join(dir, "elsewhere"));
      symlinkSync("elsewhere", join(dir, "out"));
      for (const said of ["wrote", "up to date:"]) {
        const r = await cli("render");
        expect(r.code, r.stderr).toBe(0);
        expect(r.stdout).toMatch(new RegExp(`^${said} out/ `));
        expect(lstatSync(join(dir, "out")).isSymbolicLink()).toBe(true);
        expect(existsSync(join(dir, "elsewhere", "user-data"))).toBe(true);
      }
      writeFileSync(join(dir, "dockinit.yaml"), "version: 1\nname: changed\n");
      expect((await cli("render")).code).toBe(0);
      expect(JSON.parse(readFileSync(join(dir, "elsewhere", "manifest.json"), "utf8")).name).toBe("changed");
      expect(lstatSync(join(dir, "out")).isSymbolicLink()).toBe(true);
      expect(readdirSync(dir).sort()).toEqual(["dockinit.yaml", "elsewhere", "out"]);
    });

    it("out as a regular file: refused, the file kept", async () => {
      writeFileSync(join(dir, "out"), "not a directory");
      const r = await cli("render");
      expect(r.code).toBe(1);
      expect(readFileSync(join(dir, "out"), "utf8")).toBe("not a directory");
      expect(readdirSync(dir)).toEqual(["out"]);
    });

    it("a changed config is written", async () => {
      await cli("render");
      writeFileSync(join(dir, "dockinit.yaml"), "version: 1\nname: changed\n");
      const r = await cli("render", "--json");
      expect(JSON.parse(r.stdout)).toMatchObject({ ok: true, written: true });
      expect(JSON.parse(readFileSync(join(dir, "out", "manifest.json"), "utf8")).name).toBe("changed");
      expect(JSON.parse((await cli("render", "--json")).stdout)).toMatchObject({ ok: true, written: false });
    });
  });

  it.each([
    ["gzip user-data to a terminal: refused (exit 2), nothing written", "user_data:\n  gzip: always\n", true, 2],
    ["gzip user-data to a pipe: written", "user_data:\n  gzip: always\n", false, 0],
    // A config small enough to ship uncompressed (no VPC resolver): gzip: auto leaves it plain.
    ["plain user-data to a terminal: written", "docker:\n  daemon:\n    dns: [amazon]\n", true, 0],
  ])("render --stdout, %s", async (_name, extra, tty, code) => {
    writeFileSync(join(dir, "dockinit.yaml"), `version: 1\nname: tty\n${extra}`);
    const chunks: Buffer[] = [];
    let stderr = "";
    const exit = await runCli(["render", "--stdout"], { stdout: (t) => chunks.push(Buffer.from(t)), stderr: (t) => (stderr += t), cwd: dir, env: {}, stdoutIsTTY: tty });
    expect(exit, stderr).toBe(code);
    const out = Buffer.concat(chunks);
    if (code === 2) {
      expect(out.length).toBe(0);
      expect(stderr).toBe("dockinit: the user-data is gzip (binary); not writing it to a terminal: redirect it, e.g. `dockinit render --stdout > user-data`\n");
    } else expect(out.length).toBeGreaterThan(100);
  });

  it("check -c FILE --json reports diagnostics as data", async () => {
    writeFileSync(join(dir, "bad.yaml"), BAD);
    const r = await cli("check", "-c", "bad.yaml", "--json");
    expect(r.code).toBe(1);
    const out = JSON.parse(r.stdout);
    expect(out.ok).toBe(false);
    expect(out.diagnostics[0]).toMatchObject({ code: "DI021", line: 3, col: 7, file: "bad.yaml", path: ["ephemeral_ports", "to"] });
  });

  it("check of a good config prints the user-data budget", async () => {
    copyFileSync(join(FIXTURES, "seed", "dockinit.yaml"), join(dir, "dockinit.yaml"));
    const r = await cli("check");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/dockinit.yaml: ok; user-data: [\d,]+ of 16,384 bytes/);
  });

  it("render --json and --stdout", async () => {
    mkdirSync(join(dir, "parts"));
    copyFileSync(join(FIXTURES, "kitchen-sink", "dockinit.yaml"), join(dir, "dockinit.yaml"));
    copyFileSync(join(FIXTURES, "kitchen-sink", "parts", "bootstrap.sh"), join(dir, "parts", "bootstrap.sh"));
    const j = await cli("render", "--json");
    expect(j.code).toBe(0);
    expect(JSON.parse(j.stdout).manifest.userData.budget).toBe(16384);
    // The base64 infrastructure-as-code tools take: exactly out/user-data.
    expect(Buffer.from(JSON.parse(j.stdout).userDataBase64, "base64").equals(readFileSync(join(dir, "out", "user-data")))).toBe(true);
    const s = await cli("render", "--stdout", "-c", "dockinit.yaml");
    expect(s.code).toBe(0);
    expect(Buffer.from(s.stdout, "latin1").equals(readFileSync(join(dir, "out", "user-data")))).toBe(true);
  });

  // Locally without ../shared the skip is reported by sharedExamplesPresent; in CI it throws.
  const invalid = sharedExamplesPresent(SHARED_EXAMPLES) ? nonEmpty(readdirSync(join(SHARED_EXAMPLES, "invalid")), "shared invalid examples") : [];
  it.each(invalid)("render of invalid/%s exits 1 with a coded diagnostic and writes nothing", async (file) => {
    copyFileSync(join(SHARED_EXAMPLES, "invalid", file), join(dir, file));
    const r = await cli("render", "-c", file, "-o", "out");
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`^${file.replace(".", "\\.")}:\\d+:\\d+: error DI\\d{3}: `, "m"));
    expect(r.stderr).toContain("hint: ");
    expect(existsSync(join(dir, "out"))).toBe(false);
  });

  it("a missing -c file is DI005, exit 1", async () => {
    const r = await cli("check", "-c", "nope.yaml");
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("DI005");
  });

  it("init writes a starter config that validates, and refuses to overwrite", async () => {
    expect((await cli("init")).code).toBe(0);
    expect((await cli("check")).code).toBe(0);
    const again = await cli("init");
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/exists/);
  });

  it("schema prints a JSON Schema that knows every top-level key", async () => {
    const r = await cli("schema");
    expect(r.code).toBe(0);
    const schema = JSON.parse(r.stdout);
    expect(Object.keys(schema.properties)).toEqual(expect.arrayContaining(["version", "docker", "ephemeral_ports", "firewall", "port_forwards", "user_data", "launch_template", "rollout"]));
    expect(schema.additionalProperties).toBe(false);
  });

  it("--version and the manifest's generator are package.json's version", async () => {
    const v = await cli("--version");
    expect(v.code).toBe(0);
    expect(v.stdout).toBe(`${PACKAGE_VERSION}\n`);
    await cli("render");
    expect(JSON.parse(readFileSync(join(dir, "out", "manifest.json"), "utf8")).generator).toBe(`dockinit ${PACKAGE_VERSION}`);
  });

  it("usage errors exit 2", async () => {
    expect((await cli("render", "--bogus")).code).toBe(2);
    expect((await cli("frobnicate")).code).toBe(2);
  });
});

describe("dockinit as a real process", () => {
  const bin = join(REPO, "bin", "dockinit.cjs");
  it.skipIf(!existsSync(bin))("renders the default bundle and exits 0; a bad file exits 1", () => {
    const ok = spawnSync(process.execPath, [bin, "render", "-o", join(dir, "o")], { cwd: dir, encoding: "utf8" });
    expect(ok.status).toBe(0);
    expect(existsSync(join(dir, "o", "user-data"))).toBe(true);
    writeFileSync(join(dir, "bad.yaml"), BAD);
    const bad = spawnSync(process.execPath, [bin, "check", "-c", "bad.yaml"], { cwd: dir, encoding: "utf8", env: { ...process.env, NO_COLOR: "1" } });
    expect(bad.status).toBe(1);
    expect(bad.stderr).toContain("bad.yaml:3:7: error DI021");
    expect(execFileSync(process.execPath, [bin, "--version"], { encoding: "utf8" }).trim()).toBe(PACKAGE_VERSION);
  });

  // bin.ts writes straight to the descriptor; a non-blocking pipe that fills
  // up (EAGAIN) must hand the rest to Node's stream, in order, nothing lost.
  it.skipIf(!existsSync(bin) || skipUnless(["python3"]))("output into a full non-blocking pipe still arrives whole", () => {
    const reader = join(dir, "slow-reader.py");
    writeFileSync(
      reader,
      `import fcntl, os, subprocess, sys, time
r, w = os.pipe()
fcntl.fcntl(w, 1031, 4096)  # F_SETPIPE_SZ: the smallest pipe, so schema's ~12 KB cannot fit at once
fcntl.fcntl(w, fcntl.F_SETFL, fcntl.fcntl(w, fcntl.F_GETFL) | os.O_NONBLOCK)
p = subprocess.Popen(sys.argv[1:], stdout=w)
os.close(w)
time.sleep(0.3)  # the writer meets a full pipe before anyone reads
out = b""
while True:
    chunk = os.read(r, 65536)
    if not chunk: break
    out += chunk
sys.stdout.buffer.write(out)
sys.exit(p.wait())
`,
    );
    const direct = execFileSync(process.execPath, [bin, "schema"], { encoding: "utf8" });
    const r = spawnSync("python3", [reader, process.execPath, bin, "schema"], { encoding: "utf8", timeout: 30_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(direct.length).toBeGreaterThan(2 * 4096);
    expect(r.stdout).toBe(direct);
  });

  // Start-up without a clock: compiling the bundle is most of a cold start,
  // and the launcher runs it from V8's code cache, one per V8 version: the
  // build ships the one for the Node that built it, and any other Node writes
  // its own on its first run (scripts/launcher.cjs).
  const accepted = (cache: string) => {
    const probe = `const fs = require("fs"), vm = require("vm"), Module = require("module");
const file = ${JSON.stringify(join(REPO, "bin", "dockinit-main.cjs"))};
const s = new vm.Script(Module.wrap(fs.readFileSync(file, "utf8")), { filename: file, cachedData: fs.readFileSync(${JSON.stringify(cache)}) });
process.stdout.write(String(!s.cachedDataRejected));`;
    return execFileSync(process.execPath, ["-e", probe], { encoding: "utf8" }) === "true";
  };
  const caches = (d: string) => (existsSync(d) ? readdirSync(d).filter((n) => n.endsWith(".cache")) : []);

  it.skipIf(!existsSync(bin))("this Node starts from a code cache V8 accepts", () => {
    expect(caches(join(REPO, "bin")), "the build ships the cache of the Node that built it").toHaveLength(1);
    const xdg = join(dir, "xdg");
    execFileSync(process.execPath, [bin, "render", "--stdout"], { cwd: dir, env: { ...process.env, XDG_CACHE_HOME: xdg }, stdio: "ignore" });
    const shipped = join(REPO, "bin", `dockinit-main.cjs.${process.versions.v8}.cache`);
    if (existsSync(shipped)) {
      expect(accepted(shipped)).toBe(true);
      expect(caches(join(xdg, "dockinit")), "with the shipped cache accepted, nothing is written").toEqual([]);
    } else {
      const own = caches(join(xdg, "dockinit"));
      expect(own).toEqual([expect.stringMatching(new RegExp(`^dockinit-main\\.[0-9a-f]{16}\\.${process.versions.v8.replace(/\./g, "\\.")}\\.cache$`))]);
      expect(accepted(join(xdg, "dockinit", own[0]!))).toBe(true);
    }
  });

  // The lazily written cache, on a copy of bin/ without the shipped one: the
  // first run writes it, later runs use it; a corrupt cache is replaced, an
  // unwritable cache directory is ignored; and the output never changes.
  it.skipIf(!existsSync(bin))("a missing, rejected or unwritable cache changes nothing but the time", () => {
    mkdirSync(join(dir, "bin"));
    for (const f of ["dockinit.cjs", "dockinit-main.cjs"]) copyFileSync(join(REPO, "bin", f), join(dir, "bin", f));
    const run = (env: Record<string, string | undefined>) => {
      const r = spawnSync(process.execPath, [join(dir, "bin", "dockinit.cjs"), "render", "--stdout"], { cwd: dir, env: { ...process.env, NO_COLOR: "1", ...env } });
      return { status: r.status, stdout: r.stdout.toString("base64"), stderr: r.stderr.toString() };
    };
    const expected = run({ XDG_CACHE_HOME: undefined, HOME: undefined }); // no cache directory at all
    expect(expected.status, expected.stderr).toBe(0);
    const cacheDir = join(dir, "xdg", "dockinit");
    const xdg = { XDG_CACHE_HOME: join(dir, "xdg") };

    expect(run(xdg), "first run").toEqual(expected);
    const [name] = caches(cacheDir);
    const cache = join(cacheDir, name!);
    expect(accepted(cache)).toBe(true);
    const written = statSync(cache).mtimeMs;
    expect(run(xdg), "from the cache").toEqual(expected);
    expect(statSync(cache).mtimeMs, "an accepted cache is not written again").toBe(written);

    writeFileSync(cache, Buffer.alloc(4096, 7));
    expect(run(xdg), "with a corrupt cache").toEqual(expected);
    expect(accepted(cache), "the rejected cache was replaced").toBe(true);
    expect(caches(cacheDir)).toEqual([name]);
    expect(readdirSync(cacheDir).filter((n) => n.endsWith(".tmp"))).toEqual([]);

    writeFileSync(join(dir, "not-a-dir"), "");
    expect(run({ XDG_CACHE_HOME: join(dir, "not-a-dir", "x") }), "cache directory cannot be made").toEqual(expected);
    expect(run({ XDG_CACHE_HOME: "relative", HOME: join(dir, "not-a-dir") }), "HOME's cache cannot be made").toEqual(expected);
  });
});
