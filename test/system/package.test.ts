// The package as a user gets it: `npm pack` from a clean checkout (the files
// git tracks, plus new ones not yet committed; no build output), checked by
// @arethetypeswrong/cli, installed from the tarball into an empty project with
// its dependencies from the registry, and then used every way a user would:
// `npx dockinit render` (also from a read-only install, run as a user who
// cannot write it), strict TypeScript consumers compiled against the
// package's own declarations (node16 from an ES module and from CommonJS, and
// bundler resolution, all with skipLibCheck: false), and require() and
// import() in Node. It prints the install's size.
//
// Needs the npm registry (the install fetches the AWS SDK clients, or takes
// them from npm's cache): without it a reported skip, a failure under
// DOCKINIT_REQUIRE_SYSTEM_TESTS=1.
import { execFile, spawnSync, type SpawnSyncOptions } from "node:child_process";
import { chmodSync, chownSync, copyFileSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { gunzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REPO } from "../support/fixtures.js";
import { missingPrerequisite, systemTestsRequired } from "../support/system.js";

const TSC = join(REPO, "node_modules", "typescript", "bin", "tsc");
const ATTW = join(REPO, "node_modules", "@arethetypeswrong", "cli", "dist", "index.js");
/** The user the read-only runs are made as when the tests run as root (which mode bits do not stop). */
const NOBODY = 65534;
const asRoot = process.getuid?.() === 0;

/** npm's settings from the environment, less what an outer `npm test` set for its own script. */
function npmEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^npm_/i.test(k) && !/^npm_config_(cache|registry|userconfig|globalconfig|https?_proxy|proxy|noproxy|cafile|strict_ssl)$/i.test(k)) continue;
    env[k] = v;
  }
  // The Node running the tests is the one npm, npx and the CLI start.
  env.PATH = `${dirname(process.execPath)}:${env.PATH ?? ""}`;
  env.npm_config_update_notifier = "false";
  env.npm_config_fund = "false";
  env.npm_config_audit = "false";
  env.NO_COLOR = "1";
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

/** Why the registry cannot be used here, or undefined. */
function registryMissing(): string | undefined {
  // setpriv: root runs the read-only install's renders as nobody.
  const tools = missingPrerequisite(["npm", "npx", "git", "tar", "du", ...(asRoot ? ["setpriv"] : [])]);
  if (tools) return tools;
  if (!existsSync(ATTW) || !existsSync(TSC)) return "needs the development dependencies (npm ci)";
  const ping = spawnSync("npm", ["ping", "--fetch-retries=0", "--fetch-timeout=15000"], { env: npmEnv(), encoding: "utf8", timeout: 30_000 });
  if (ping.status !== 0) {
    const why = ping.error?.message ?? ping.stderr.split("\n").find((l) => l.includes("FetchError")) ?? ping.stderr.split("\n").find((l) => /error code /.test(l)) ?? `exit ${ping.status}`;
    return `needs the npm registry (npm ping: ${why.replace(/^npm error /, "").trim()})`;
  }
  return undefined;
}

function skipUnlessRegistry(): string | false {
  const missing = registryMissing();
  if (!missing) return false;
  if (systemTestsRequired) throw new Error(`DOCKINIT_REQUIRE_SYSTEM_TESTS=1 but this test ${missing}`);
  console.warn(`skipping: ${missing}`);
  return missing;
}

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], opts: SpawnSyncOptions & { as?: number } = {}): Run {
  const { as, ...rest } = opts;
  const [file, argv] = as === undefined ? [cmd, args] : ["setpriv", [`--reuid=${as}`, `--regid=${as}`, "--clear-groups", "--", cmd, ...args]];
  const r = spawnSync(file, argv, { encoding: "utf8", timeout: 240_000, maxBuffer: 64 << 20, env: npmEnv(), ...rest });
  return { status: r.status, stdout: String(r.stdout ?? ""), stderr: `${String(r.stderr ?? "")}${r.error ? `\n${r.error.message}` : ""}` };
}

const ok = (r: Run) => `${r.stdout}\n${r.stderr}`;

/** Every file and folder under dir with its size and mtime: to prove a run wrote nothing there. */
function snapshot(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      const st = lstatSync(p);
      out.push(`${relative(dir, p)} ${st.isDirectory() ? "dir" : st.size} ${st.mtimeMs}`);
      if (st.isDirectory()) walk(p);
    }
  };
  walk(dir);
  return out;
}

const cachesIn = (d: string) => (existsSync(d) ? readdirSync(d).filter((n) => n.endsWith(".cache")) : []);

interface Tsc {
  status: number | null;
  /** "file(line): TScode" */
  errors: string[];
  /** The files of its program, relative to the project. */
  files: string[];
  output: string;
}

/** tsc -p, asynchronously: the compiles run side by side (each is mostly one core's work). */
function tsc(project: string, tsconfig: string): Promise<Tsc> {
  return new Promise((resolvePromise) => {
    execFile(process.execPath, [TSC, "-p", tsconfig, "--pretty", "false", "--listFiles"], { cwd: project, env: npmEnv(), maxBuffer: 64 << 20, timeout: 240_000 }, (err, stdout, stderr) => {
      const lines = stdout.split("\n");
      const errors = lines.flatMap((l) => {
        const m = /^(.+?)\((\d+),\d+\): error (TS\d+):/.exec(l);
        return m ? [`${m[1]}(${m[2]}): ${m[3]}`] : [];
      });
      const files = lines.filter((l) => l.startsWith("/")).map((l) => relative(project, l));
      const status = err ? (typeof err.code === "number" ? err.code : null) : 0;
      resolvePromise({ status, errors, files, output: `${stdout}\n${stderr}${err && status === null ? `\n${err.message}` : ""}` });
    });
  });
}

describe.skipIf(skipUnlessRegistry())("the packed package, installed from its tarball into an empty project", () => {
  let root: string;
  let tarball: string;
  let project: string;
  let installed: string;
  /** The first render, by the tests' own user from the writable install: what every other run must match. */
  let baseline: Run & { userData: Buffer };

  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), "dockinit-package-"));
    chmodSync(root, 0o755); // nobody reads the install and the project's package.json

    // A clean checkout: what git tracks, plus new files it does not ignore,
    // without dist/ and bin/'s build output; node_modules is the clone's.
    const checkout = join(root, "checkout");
    const listed = run("git", ["ls-files", "-z", "--cached", "--others", "--exclude-standard"], { cwd: REPO });
    expect(listed.status, ok(listed)).toBe(0);
    for (const f of listed.stdout.split("\0").filter(Boolean)) {
      const from = join(REPO, f);
      if (!existsSync(from) || !statSync(from).isFile()) continue; // deleted in the work tree
      mkdirSync(dirname(join(checkout, f)), { recursive: true });
      copyFileSync(from, join(checkout, f));
    }
    expect(existsSync(join(checkout, "dist")), "no build output in the checkout").toBe(false);
    symlinkSync(join(REPO, "node_modules"), join(checkout, "node_modules"), "dir");

    // npm pack runs `prepare` (the whole build, types included).
    const packDir = join(root, "pack");
    mkdirSync(packDir);
    const pack = run("npm", ["pack", "--pack-destination", packDir], { cwd: checkout });
    expect(pack.status, ok(pack)).toBe(0);
    const tgz = readdirSync(packDir).filter((n) => n.endsWith(".tgz"));
    expect(tgz).toHaveLength(1);
    tarball = join(packDir, tgz[0]!);

    // One install, shared by every test below.
    project = join(root, "project");
    mkdirSync(project);
    writeFileSync(join(project, "package.json"), JSON.stringify({ name: "consumer", version: "1.0.0", private: true }, null, 2));
    const install = run("npm", ["install", "--prefer-offline", "--no-audit", "--no-fund", tarball], { cwd: project });
    expect(install.status, ok(install)).toBe(0);
    installed = join(project, "node_modules", "dockinit");
    expect(existsSync(join(installed, "package.json"))).toBe(true);

    const env = npmEnv({ HOME: join(root, "root-home"), XDG_CACHE_HOME: undefined });
    const first = run("npx", ["--no", "dockinit", "render"], { cwd: project, env });
    expect(first.status, ok(first)).toBe(0);
    baseline = { ...first, userData: readFileSync(join(project, "out", "user-data")) };
  });

  afterAll(() => {
    if (!root) return;
    if (installed && existsSync(installed)) run("chmod", ["-R", "u+w", installed]);
    rmSync(root, { recursive: true, force: true });
  });

  it("packs the CLI, the library for both module systems with their types, LICENSE and README: nothing else", () => {
    const list = run("tar", ["-tzf", tarball]);
    expect(list.status, ok(list)).toBe(0);
    const files = list.stdout.split("\n").filter(Boolean).map((f) => f.replace(/^package\//, "")).sort();
    const cache = files.filter((f) => /^bin\/dockinit-main\.cjs\..+\.cache$/.test(f));
    expect(cache, "the code cache of the Node that built it").toHaveLength(1);
    expect(files).toEqual(
      [
        "LICENSE",
        "README.md",
        "bin/dockinit-main.cjs",
        "bin/dockinit.cjs",
        cache[0]!,
        "dist/index.cjs",
        "dist/index.d.cts",
        "dist/index.d.ts",
        "dist/index.js",
        // cloud-init's own schemas, for check --cloud-init (read beside bin/ and dist/).
        ...readdirSync(join(REPO, "cloud-init-schemas")).map((f) => `cloud-init-schemas/${f}`),
        // The README's links to the user's guides and notes resolve inside the installed package too.
        ...readdirSync(join(REPO, "docs")).filter((f) => f.endsWith(".md")).map((f) => `docs/${f}`),
        "package.json",
      ].sort(),
    );
    expect(readFileSync(join(installed, "LICENSE"), "utf8")).toMatch(/^MIT License/);
    const manifest = JSON.parse(readFileSync(join(installed, "package.json"), "utf8")) as { license: string; exports: unknown };
    expect(manifest.license).toBe("MIT");
    expect(manifest.exports).toEqual({
      ".": {
        import: { types: "./dist/index.d.ts", default: "./dist/index.js" },
        require: { types: "./dist/index.d.cts", default: "./dist/index.cjs" },
      },
      "./package.json": "./package.json",
    });
  });

  it("@arethetypeswrong/cli finds no problems in the tarball", () => {
    // --no-definitely-typed: the package has its own types; no @types look-up.
    const attw = run(process.execPath, [ATTW, tarball, "--no-definitely-typed", "--format", "ascii", "--no-color", "--no-emoji"], { cwd: root });
    console.log(`attw ${relative(root, tarball)}:\n${attw.stdout.trim()}`);
    expect(attw.status, ok(attw)).toBe(0);
    expect(attw.stdout).toContain("No problems found");
    const dot = attw.stdout.split('"dockinit/package.json"')[0]!;
    for (const line of ["node10: OK", "node16 (from CJS): OK (CJS)", "node16 (from ESM): OK (ESM)", "bundler: OK"]) expect(dot).toContain(line);
  });

  it("npx dockinit render writes out/", () => {
    expect(baseline.stdout).toMatch(/^wrote out\/ \(\d+ files\)/);
    expect(existsSync(join(project, "out", "manifest.json"))).toBe(true);
    // Every bundle is gzip now (README: the host's checks put even the default over 16,384 bytes as text).
    expect([...baseline.userData.subarray(0, 2)]).toEqual([0x1f, 0x8b]);
    expect(gunzipSync(baseline.userData).subarray(0, 20).toString()).toMatch(/^Content-Type: multipart|^#cloud-config/);
  });

  it("runs from a read-only install, as a user who cannot write it: the code cache is skipped silently", () => {
    run("chmod", ["-R", "a-w", installed]);
    const before = snapshot(installed);
    const as = asRoot ? NOBODY : undefined;
    /** A folder the runner owns (nobody's when root runs the tests). */
    const owned = (name: string, mode = 0o755) => {
      const d = join(root, name);
      mkdirSync(d, { recursive: true });
      if (asRoot) chownSync(d, NOBODY, NOBODY);
      chmodSync(d, mode);
      return d;
    };
    const homeRw = owned("home-rw");
    const homeRo = join(root, "home-ro"); // the runner cannot make .cache in it
    mkdirSync(homeRo);
    if (!asRoot) chmodSync(homeRo, 0o555);
    const npmCache = owned("npm-cache");
    // Running in a folder of the project: npx finds the installed bin above it.
    const render = (name: string, env: Record<string, string | undefined>) => {
      const cwd = owned(join("project", "runs", name));
      const r = run("npx", ["--no", "dockinit", "render"], { cwd, as, env: npmEnv({ npm_config_cache: npmCache, XDG_CACHE_HOME: undefined, ...env }) });
      const userData = existsSync(join(cwd, "out", "user-data")) ? readFileSync(join(cwd, "out", "user-data")) : Buffer.alloc(0);
      return { ...r, userData };
    };
    const same = (r: Run & { userData: Buffer }, what: string) => {
      expect(r.status, `${what}: ${ok(r)}`).toBe(0);
      expect(r.stdout, what).toBe(baseline.stdout);
      // npm itself may warn (its own logs and cache); what dockinit says is unchanged.
      const own = (s: string) => s.split("\n").filter((l) => !/^npm (warn|notice)/.test(l)).join("\n");
      expect(own(r.stderr), what).toBe(own(baseline.stderr));
      expect(r.userData.equals(baseline.userData), what).toBe(true);
    };

    // First: this user really cannot write the install.
    const probe = run("sh", ["-c", 'touch "$1/x" 2>/dev/null && echo wrote || echo refused', "sh", join(installed, "bin")], { as });
    expect(probe.stdout.trim(), "a read-only install").toBe("refused");

    same(render("plain", { HOME: homeRw }), "read-only install");
    // A Node whose V8 rejects the shipped cache (another version, or flags
    // such as this one) makes its own, in the user's cache folder: not at
    // all when that cannot be written, and never into the install.
    const flags = { NODE_OPTIONS: "--max-old-space-size=1536" };
    same(render("no-cache-home", { HOME: homeRo, ...flags }), "read-only install, read-only home");
    expect(readdirSync(homeRo), "nothing made in a read-only home").toEqual([]);
    same(render("cache-home", { HOME: homeRw, ...flags }), "read-only install, writable home");
    const ownCaches = cachesIn(join(homeRw, ".cache", "dockinit"));
    const shipped = readdirSync(join(installed, "bin")).find((n) => n.endsWith(".cache"))!;
    const rejected = run(
      process.execPath,
      [
        "--max-old-space-size=1536",
        "-e",
        `const fs = require("fs"), vm = require("vm"), Module = require("module"); const f = process.argv[1];
let data; try { data = fs.readFileSync(f + "." + process.versions.v8 + ".cache"); } catch { process.stdout.write("missing"); process.exit(0); }
process.stdout.write(String(new vm.Script(Module.wrap(fs.readFileSync(f, "utf8")), { filename: f, cachedData: data }).cachedDataRejected));`,
        join(installed, "bin", "dockinit-main.cjs"),
      ],
      {},
    ).stdout;
    console.log(`shipped code cache ${shipped} with ${flags.NODE_OPTIONS}: ${rejected === "true" ? "rejected" : rejected === "false" ? "accepted" : rejected}; own caches written: ${ownCaches.join(", ") || "none"}`);
    if (rejected !== "false") expect(ownCaches, "the user's own cache, in their cache folder").toHaveLength(1);
    const ownMtimes = () => ownCaches.map((n) => statSync(join(homeRw, ".cache", "dockinit", n)).mtimeMs);
    const written = ownMtimes();
    same(render("cache-home-again", { HOME: homeRw, ...flags }), "from the user's own cache");
    expect(ownMtimes(), "the own cache was accepted, not written again").toEqual(written);
    // check --cloud-init finds the schemas shipped beside bin/ and its validator in the install.
    const targeted = run("npx", ["--no", "dockinit", "check", "--cloud-init", "22.2"], { cwd: owned(join("project", "runs", "cloud-init")), as, env: npmEnv({ npm_config_cache: npmCache, HOME: homeRw }) });
    expect(targeted.status, ok(targeted)).toBe(0);
    expect(targeted.stdout).toMatch(/valid for cloud-init 22\.2 \(schema 22\.2\.2\)/);
    expect(snapshot(installed), "nothing written into the install").toEqual(before);
  });

  describe("strict TypeScript consumers, against the package's own declarations (skipLibCheck: false)", () => {
    const good = `import { loadDefaultConfig, renderBundle, userDataBase64, type Diagnostic, type RenderResult } from "dockinit";

const r: RenderResult = renderBundle(loadDefaultConfig());
if (!r.bundle) throw new Error(r.diagnostics.map((d: Diagnostic) => d.message).join("\\n"));
const bytes: Buffer = r.bundle.userData;
const base64: string = userDataBase64(r.bundle);
export const sizes: [number, number] = [bytes.length, base64.length];
`;
    // Each line an error, if and only if the declarations are real (not any).
    const bad = `import { loadDefaultConfig, renderBundle } from "dockinit";

export const notANumber: number = renderBundle(loadDefaultConfig());
renderBundle("dockinit.yaml");
`;
    const cjsGood = `import dockinit = require("dockinit");
import type { RenderResult } from "dockinit";

const r: RenderResult = dockinit.renderBundle(dockinit.loadDefaultConfig());
if (!r.bundle) throw new Error(r.diagnostics.map((d) => d.message).join("\\n"));
const bytes: Buffer = r.bundle.userData;
export = bytes.length + dockinit.userDataBase64(r.bundle).length;
`;
    const cjsBad = `import dockinit = require("dockinit");

export const notANumber: number = dockinit.renderBundle(dockinit.loadDefaultConfig());
dockinit.renderBundle("dockinit.yaml");
`;
    const expectedErrors = (file: string) => [`${file}(3): TS2322`, `${file}(4): TS2345`];

    const tsconfig = (dir: string, options: Record<string, unknown>, files: string[]) => {
      const compilerOptions = {
        target: "ES2022",
        strict: true,
        skipLibCheck: false,
        noEmit: true,
        // @types/node (the API's Buffer) as a user's project has it; the
        // clone's, so the install stays the package's own.
        types: ["node"],
        typeRoots: [join(REPO, "node_modules", "@types")],
        ...options,
      };
      writeFileSync(join(dir, "tsconfig.json"), JSON.stringify({ compilerOptions, files }, null, 2));
      return join(dir, "tsconfig.json");
    };
    const consumer = (name: string, files: Record<string, string>, pkgType?: "module") => {
      const dir = join(project, "ts", name);
      mkdirSync(dir, { recursive: true });
      if (pkgType) writeFileSync(join(dir, "package.json"), JSON.stringify({ type: pkgType }));
      for (const [f, text] of Object.entries(files)) writeFileSync(join(dir, f), text);
      return dir;
    };

    let node16: Tsc;
    let bundler: Tsc;
    beforeAll(async () => {
      const n16 = consumer("node16", { "esm.mts": good, "esm-bad.mts": bad, "cjs.cts": cjsGood, "cjs-bad.cts": cjsBad });
      const bnd = consumer("bundler", { "app.ts": good, "bad.ts": bad }, "module");
      [node16, bundler] = await Promise.all([
        tsc(n16, tsconfig(n16, { module: "node16", moduleResolution: "node16" }, ["esm.mts", "esm-bad.mts", "cjs.cts", "cjs-bad.cts"])),
        tsc(bnd, tsconfig(bnd, { module: "esnext", moduleResolution: "bundler" }, ["app.ts", "bad.ts"])),
      ]);
    });

    // The consumers compile clean (no error in them), and each deliberate
    // error is reported: were the types any, the bad files would compile.
    it("node16: an ES module (.mts) compiles against index.d.ts, a CommonJS one (.cts) against index.d.cts", () => {
      expect(node16.status, node16.output).not.toBe(0);
      expect(node16.errors.sort(), node16.output).toEqual([...expectedErrors("cjs-bad.cts"), ...expectedErrors("esm-bad.mts")].sort());
      expect(node16.files).toContain("../../node_modules/dockinit/dist/index.d.ts");
      expect(node16.files).toContain("../../node_modules/dockinit/dist/index.d.cts");
    });

    it("bundler resolution (an ES module project) compiles against index.d.ts", () => {
      expect(bundler.status, bundler.output).not.toBe(0);
      expect(bundler.errors.sort(), bundler.output).toEqual(expectedErrors("bad.ts"));
      expect(bundler.files).toContain("../../node_modules/dockinit/dist/index.d.ts");
      expect(bundler.files).not.toContain("../../node_modules/dockinit/dist/index.d.cts");
    });
  });

  it("loads with require() and import(): the same bytes as the CLI's render", () => {
    const script = (how: "require" | "import") =>
      how === "require"
        ? `const d = require("dockinit"); const { bundle } = d.renderBundle(d.loadDefaultConfig());
process.stdout.write(JSON.stringify({ from: require.resolve("dockinit"), userData: d.userDataBase64(bundle) }));`
        : `const d = await import("dockinit"); const { bundle } = d.renderBundle(d.loadDefaultConfig());
process.stdout.write(JSON.stringify({ from: import.meta.resolve("dockinit"), userData: d.userDataBase64(bundle) }));`;
    writeFileSync(join(project, "load.cjs"), script("require"));
    writeFileSync(join(project, "load.mjs"), script("import"));
    const load = (file: string) => {
      const r = run(process.execPath, [file], { cwd: project });
      expect(r.status, ok(r)).toBe(0);
      expect(r.stderr).toBe("");
      return JSON.parse(r.stdout) as { from: string; userData: string };
    };
    const cjs = load("load.cjs");
    const esm = load("load.mjs");
    expect(cjs.from).toBe(join(installed, "dist", "index.cjs"));
    expect(esm.from).toBe(`file://${join(installed, "dist", "index.js")}`);
    expect(Buffer.from(cjs.userData, "base64").equals(baseline.userData)).toBe(true);
    expect(esm.userData).toBe(cjs.userData);
  });

  it("measures the install (the package and every dependency, the AWS SDK clients included)", () => {
    const du = (args: string[], path: string) => Number(run("du", [...args, path]).stdout.split("\t")[0]);
    const modules = join(project, "node_modules");
    const disk = du(["-sk"], modules) * 1024;
    const bytes = du(["-sb"], modules);
    const own = du(["-sb"], installed);
    const sdk = ["@aws-sdk", "@smithy", "@aws-crypto"].map((d) => (existsSync(join(modules, d)) ? du(["-sb"], join(modules, d)) : 0)).reduce((a, b) => a + b, 0);
    const packages = run("npm", ["ls", "--all", "--parseable", "--omit=dev"], { cwd: project }).stdout.split("\n").filter((l) => l.includes("node_modules")).length;
    const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;
    console.log(
      `install size: node_modules ${mb(bytes)} (${mb(disk)} on disk), ${packages} packages; dockinit itself ${mb(own)}; AWS SDK (@aws-sdk, @smithy, @aws-crypto) ${mb(sdk)}; tarball ${mb(statSync(tarball).size)}`,
    );
    expect(bytes).toBeGreaterThan(own);
    // The build's tools are not the user's: none of them is installed.
    for (const dev of ["typescript", "esbuild", "handlebars", "commander", "rollup"]) expect(existsSync(join(modules, dev)), dev).toBe(false);
  });
});
