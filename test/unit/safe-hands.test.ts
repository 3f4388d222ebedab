// "Safe in a stranger's hands" (issue 27), from the outside: the built CLI as
// a process, the way a new user meets it. render deletes nothing it did not
// write; diff, push and rollout never act on the built-in default; the region
// used is the config's; the small things a trial ran into.
//
// AWS is a local HTTP server that records every request and answers none
// usefully: what matters is whether a request was sent at all, and where to.
import { spawn } from "node:child_process";
import { createServer, type IncomingMessage, type Server } from "node:http";
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { REPO } from "../support/fixtures.js";

const BIN = join(REPO, "bin", "dockinit.cjs");

interface Recorded {
  method: string;
  url: string;
  /** The SigV4 credential scope's region: where the SDK sent the request. */
  region?: string;
  body: string;
}

let server: Server;
let endpoint: string;
const requests: Recorded[] = [];

beforeAll(async () => {
  server = createServer((req: IncomingMessage, res) => {
    let body = "";
    req.on("data", (c: Buffer) => (body += c.toString("utf8")));
    req.on("end", () => {
      const scope = /Credential=[^/]+\/\d{8}\/([a-z0-9-]+)\//.exec(req.headers.authorization ?? "");
      requests.push({ method: req.method ?? "", url: req.url ?? "", body, ...(scope ? { region: scope[1] } : {}) });
      // An EC2/Auto Scaling-shaped error: the SDK reports it and the CLI exits 3.
      res.writeHead(400, { "content-type": "text/xml" });
      res.end('<?xml version="1.0"?><Response><Errors><Error><Code>RecorderSaysNo</Code><Message>recorded</Message></Error></Errors><RequestID>r</RequestID></Response>');
    });
  });
  await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no port");
  endpoint = `http://127.0.0.1:${address.port}`;
});
afterAll(() => new Promise<void>((ok) => server.close(() => ok())));

// The launcher keeps a code cache per Node in $XDG_CACHE_HOME (Node 22 and 24
// in CI make their own): outside the folders these tests compare.
const codeCache = mkdtempSync(join(tmpdir(), "dockinit-safe-cache-"));
afterAll(() => rmSync(codeCache, { recursive: true, force: true }));

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "dockinit-safe-"));
  requests.length = 0;
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** The built CLI as a process (async: the recorder answers on this event loop). */
function run(args: string[], opts: { cwd?: string; env?: Record<string, string>; stdin?: string | Buffer } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: opts.cwd ?? dir,
      env: {
        PATH: process.env.PATH ?? "",
        HOME: dir,
        XDG_CACHE_HOME: codeCache,
        NO_COLOR: "1",
        AWS_ACCESS_KEY_ID: "AKID",
        AWS_SECRET_ACCESS_KEY: "secret",
        AWS_ENDPOINT_URL: endpoint,
        AWS_MAX_ATTEMPTS: "1",
        ...opts.env,
      },
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString("utf8")));
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString("utf8")));
    child.on("error", fail);
    child.on("close", (code) => done({ code, stdout, stderr }));
    child.stdin.end(opts.stdin ?? "");
  });
}

/** Every path under root (folders end in "/"), with each file's bytes: what "nothing changed" means. */
function tree(root: string, rel = ""): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of readdirSync(join(root, rel)).sort()) {
    const p = rel ? `${rel}/${name}` : name;
    const st = lstatSync(join(root, p));
    if (st.isSymbolicLink()) out[p] = "link";
    else if (st.isDirectory()) Object.assign(out, { [`${p}/`]: "dir" }, tree(root, p));
    else out[p] = readFileSync(join(root, p)).toString("base64");
  }
  return out;
}

const CONFIG = "version: 1\nname: web-prod\nlaunch_template:\n  name: web-prod\n  region: eu-west-1\n";

describe.skipIf(!existsSync(BIN))("render owns only what it wrote", () => {
  it("render -o . in a repository (with .git): refused by name, nothing deleted", async () => {
    mkdirSync(join(dir, ".git", "objects"), { recursive: true });
    writeFileSync(join(dir, ".git", "HEAD"), "ref: refs/heads/main\n");
    writeFileSync(join(dir, "keep.txt"), "mine");
    writeFileSync(join(dir, "dockinit.yaml"), CONFIG);
    const before = tree(dir);
    for (const args of [["render", "-o", "."], ["render", "-c", "dockinit.yaml", "-o", "."], ["render", "-o", dir]]) {
      const r = await run(args);
      expect(r.code, args.join(" ")).toBe(1);
      expect(r.stdout).toBe("");
      expect(tree(dir)).toEqual(before);
    }
    // With the config elsewhere, the folder's own entries are named.
    const elsewhere = join(dir, "..", `${readdirSync(join(dir, "..")).length}-cfg-${process.pid}.yaml`);
    writeFileSync(elsewhere, CONFIG);
    try {
      rmSync(join(dir, "dockinit.yaml"));
      const r = await run(["render", "-c", elsewhere, "-o", "."]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain("error DI080: ./ holds what dockinit did not write: .git/, keep.txt");
      expect(existsSync(join(dir, ".git", "HEAD"))).toBe(true);
    } finally {
      rmSync(elsewhere, { force: true });
    }
  });

  it("render -o .. and -o ~ (a parent, a home folder): refused, nothing deleted", async () => {
    const child = join(dir, "project");
    mkdirSync(child);
    writeFileSync(join(dir, "notes.txt"), "mine");
    const before = tree(dir);
    expect((await run(["render", "-o", ".."], { cwd: child })).code).toBe(1);
    expect((await run(["render", "-o", dir], { cwd: child, env: { HOME: dir } })).code).toBe(1);
    expect(tree(dir)).toEqual(before);
  });

  it("into an out/ holding one extra file: refused, the file and the render kept", async () => {
    expect((await run(["render"])).code).toBe(0);
    writeFileSync(join(dir, "out", "tsconfig.tsbuildinfo"), "{}");
    const before = tree(dir);
    const r = await run(["render"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("error DI080: out/ holds what dockinit did not write: tsconfig.tsbuildinfo; nothing written or removed");
    expect(r.stderr).toContain("hint: ");
    expect(tree(dir)).toEqual(before);
  });

  it("into a symlinked out/: the folder it names is judged like out/ itself; the link is never replaced", async () => {
    mkdirSync(join(dir, "build"));
    writeFileSync(join(dir, "build", "app.js"), "x");
    symlinkSync("build", join(dir, "out"));
    const before = tree(dir);
    expect((await run(["render"])).code).toBe(1);
    expect(tree(dir)).toEqual(before);
    rmSync(join(dir, "build", "app.js"));
    const r = await run(["render"]);
    expect(r.code, r.stderr).toBe(0);
    expect(lstatSync(join(dir, "out")).isSymbolicLink()).toBe(true);
    expect(readdirSync(join(dir, "build")).sort()).toEqual(["files", "manifest.json", "user-data"]);
  });

  it("-o / and a folder of 20,000 entries: refused at once, naming the top level only", async () => {
    // Any config file lies under / (DI081): read it from standard input.
    const root = await run(["render", "-c", "-", "-o", "/"], { stdin: CONFIG });
    expect(root.code).toBe(1);
    expect(root.stderr).toMatch(/^dockinit: error DI080: \/ holds what dockinit did not write: /m);
    writeFileSync(join(dir, "dockinit.yaml"), CONFIG);
    mkdirSync(join(dir, "big", "d"), { recursive: true });
    for (let i = 0; i < 20_000; i++) writeFileSync(join(dir, "big", "d", String(i)), "");
    const big = await run(["render", "-o", "big"]);
    expect(big.code).toBe(1);
    expect(big.stderr).toContain("error DI080: big/ holds what dockinit did not write: d/; nothing written or removed");
    // With a dockinit manifest, a foreign folder is named, not walked.
    mkdirSync(join(dir, "out"));
    expect((await run(["render"])).code).toBe(0);
    mkdirSync(join(dir, "out", "cache"));
    for (let i = 0; i < 20_000; i++) writeFileSync(join(dir, "out", "cache", String(i)), "");
    const mixed = await run(["render", "--json"]);
    expect(mixed.code).toBe(1);
    expect(JSON.parse(mixed.stdout)).toMatchObject({ ok: false, error: { code: "DI080", entries: ["cache/"] } });
  });

  it("a previous render is replaced in its folder: the folder (inode, mode) stays, files the new render lacks go, nothing else", async () => {
    const withMotd = `${CONFIG}user_data:\n  write_files:\n    - { path: /etc/motd.d/web, content: "hello\\n" }\n`;
    writeFileSync(join(dir, "dockinit.yaml"), withMotd);
    mkdirSync(join(dir, "out"), { mode: 0o2775 });
    chmodSync(join(dir, "out"), 0o2775);
    const inode = statSync(join(dir, "out")).ino;
    expect((await run(["render"])).code).toBe(0);
    expect(readFileSync(join(dir, "out", "files", "etc", "motd.d", "web"), "utf8")).toBe("hello\n");
    writeFileSync(join(dir, "dockinit.yaml"), CONFIG);
    const r = await run(["render"]);
    expect(r.code, r.stderr).toBe(0);
    expect(existsSync(join(dir, "out", "files", "etc", "motd.d"))).toBe(false);
    expect(statSync(join(dir, "out")).ino).toBe(inode);
    expect(statSync(join(dir, "out")).mode & 0o7777).toBe(0o2775);
    expect(readdirSync(join(dir, "out")).sort()).toEqual(["files", "manifest.json", "user-data"]);
    // No temporary file left anywhere, and the result is exactly a fresh render's.
    const fresh = join(dir, "fresh");
    expect((await run(["render", "-o", "fresh"])).code).toBe(0);
    expect(tree(join(dir, "out"))).toEqual(tree(fresh));
  });

  it("render -o . in an empty folder writes into it (the shell standing there keeps its folder)", async () => {
    const here = join(dir, "here");
    mkdirSync(here);
    const inode = statSync(here).ino;
    writeFileSync(join(dir, "dockinit.yaml"), CONFIG);
    const r = await run(["render", "-c", "../dockinit.yaml", "-o", "."], { cwd: here });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^wrote \.\/ /);
    expect(statSync(here).ino).toBe(inode);
    expect(readdirSync(here).sort()).toEqual(["files", "manifest.json", "user-data"]);
  });

  it("not a folder (a file, a dangling link): refused, with --json too; the config's own folder: DI081", async () => {
    writeFileSync(join(dir, "afile"), "x");
    symlinkSync("nowhere", join(dir, "dangling"));
    for (const name of ["afile", "dangling"]) {
      const r = await run(["render", "-o", name, "--json"]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`error DI080: ${name} is not a folder; nothing written or removed`);
      expect(JSON.parse(r.stdout)).toMatchObject({ ok: false, error: { code: "DI080" } });
    }
    writeFileSync(join(dir, "dockinit.yaml"), CONFIG);
    const own = await run(["render", "-o", ".", "--json"]);
    expect(own.code).toBe(1);
    expect(JSON.parse(own.stdout)).toMatchObject({ ok: false, error: { code: "DI081" } });
    expect(readFileSync(join(dir, "afile"), "utf8")).toBe("x");
  });

  it("a re-render into its own out/ replaces it, and the config file beside it is never touched", async () => {
    writeFileSync(join(dir, "dockinit.yaml"), CONFIG);
    expect((await run(["render"])).code).toBe(0);
    writeFileSync(join(dir, "dockinit.yaml"), CONFIG.replace("web-prod\nlaunch", "web-next\nlaunch"));
    const r = await run(["render"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^wrote out\//);
    expect(JSON.parse(readFileSync(join(dir, "out", "manifest.json"), "utf8")).name).toBe("web-next");
    expect(readdirSync(dir).sort()).toEqual(["dockinit.yaml", "out"]);
  });
});

describe.skipIf(!existsSync(BIN))("AWS commands never act on the built-in default", () => {
  it.each([
    ["push", "--launch-template", "web-prod", "--set-default"],
    ["push", "--launch-template", "web-prod", "--create", "--yes"],
    ["diff", "--launch-template", "web-prod"],
    ["rollout", "--launch-template", "web-prod", "--yes"],
    ["push", "--launch-template", "web-prod", "--rollout", "--yes"],
  ])("from an empty folder, %s … sends nothing and exits 2", async (...args) => {
    const r = await run([...args, "--region", "eu-west-1"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/no dockinit.yaml here, and (push|diff|rollout) never acts on the built-in default; nothing sent to AWS\. Write one with `dockinit init`/);
    expect(requests).toEqual([]);
  });

  it("the emergency stop needs no config: rollout --cancel --auto-scaling-group reaches Auto Scaling", async () => {
    const r = await run(["rollout", "--cancel", "--auto-scaling-group", "web", "--region", "eu-west-1"]);
    expect(r.code).toBe(3);
    expect(requests.map((q) => new URLSearchParams(q.body).get("Action"))).toContain("CancelInstanceRefresh");
  });
});

describe.skipIf(!existsSync(BIN))("the region is the config's", () => {
  it("launch_template.region beats AWS_REGION, says so and warns; --region beats both", async () => {
    writeFileSync(join(dir, "dockinit.yaml"), CONFIG);
    const r = await run(["diff"], { env: { AWS_REGION: "us-east-1" } });
    expect(r.code).toBe(3);
    expect(r.stderr).toContain("dockinit: region eu-west-1 (from launch_template.region in dockinit.yaml)\n");
    expect(r.stderr).toContain("dockinit: warning: AWS_REGION=us-east-1 is not used: launch_template.region comes first (pass --region us-east-1 to work there)\n");
    expect(requests.length).toBeGreaterThan(0);
    expect(new Set(requests.map((q) => q.region))).toEqual(new Set(["eu-west-1"]));

    requests.length = 0;
    const flagged = await run(["push", "--create", "--region", "ap-south-1"], { env: { AWS_REGION: "us-east-1" } });
    expect(flagged.code).toBe(3);
    expect(flagged.stderr).toContain("dockinit: region ap-south-1 (from --region)\ndockinit: warning: --region ap-south-1 overrides launch_template.region (eu-west-1) in dockinit.yaml\n");
    // The user typed --region: AWS_REGION is not worth a warning then.
    expect(flagged.stderr).not.toContain("AWS_REGION");
    expect(new Set(requests.map((q) => q.region))).toEqual(new Set(["ap-south-1"]));
  });

  it("AWS_REGION when the config names no region", async () => {
    writeFileSync(join(dir, "dockinit.yaml"), "version: 1\nname: web\nlaunch_template:\n  name: web\n");
    const r = await run(["diff"], { env: { AWS_REGION: "us-east-1" } });
    expect(r.stderr).toContain("dockinit: region us-east-1 (from AWS_REGION)\n");
    expect(r.stderr).not.toContain("warning");
    expect(new Set(requests.map((q) => q.region))).toEqual(new Set(["us-east-1"]));
  });
});

describe.skipIf(!existsSync(BIN))("the small things a trial met", () => {
  it("diff exits as diff(1): 2 for an invalid config and for usage, 3 for AWS", async () => {
    writeFileSync(join(dir, "bad.yaml"), "version: 1\nephemeral_ports:\n  to: 61000-49152\nlaunch_template:\n  name: web\n");
    expect((await run(["diff", "bad.yaml"])).code).toBe(2);
    expect((await run(["diff", "-c", "bad.yaml", "--json"])).code).toBe(2);
    expect((await run(["diff", "bad.yaml", "--no-such-flag"])).code).toBe(2);
    writeFileSync(join(dir, "dockinit.yaml"), CONFIG);
    expect((await run(["diff"])).code).toBe(3);
  });

  it("a positional config on every command that takes -c, and -c - for standard input", async () => {
    writeFileSync(join(dir, "my.yaml"), "version: 1\nname: from-file\n");
    for (const cmd of ["check", "render", "explain"]) {
      const r = await run([cmd, "my.yaml", ...(cmd === "render" ? ["--stdout"] : [])]);
      expect(r.code, `${cmd}: ${r.stderr}`).toBe(0);
    }
    const both = await run(["check", "my.yaml", "-c", "other.yaml"]);
    expect(both.code).toBe(2);
    expect(both.stderr).toBe("dockinit: two configuration files given (my.yaml and -c other.yaml); give one\n");
    // Standard input; a source: path resolves from the current folder.
    writeFileSync(join(dir, "motd"), "hello\n");
    const stdin = await run(["check", "-c", "-", "--json"], { stdin: "version: 1\nname: piped\nuser_data:\n  write_files:\n    - path: /etc/motd\n      source: motd\n" });
    expect(stdin.code, stdin.stderr).toBe(0);
    expect(JSON.parse(stdin.stdout)).toMatchObject({ ok: true, file: "<stdin>" });
    const piped = await run(["render", "-", "--stdout"], { stdin: readFileSync(join(dir, "my.yaml")) });
    const fromFile = await run(["render", "my.yaml", "--stdout"]);
    expect(piped.code).toBe(0);
    expect(piped.stdout).toBe(fromFile.stdout);
    const empty = await run(["check", "-c", "-"], { stdin: "" });
    expect(empty.code).toBe(1);
    expect(empty.stderr).toMatch(/^<stdin>: error DI005: standard input is empty/m);
    const bad = await run(["check", "-c", "-"], { stdin: "version: 1\nnmae: x\n" });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^<stdin>:2:1: error DI010/m);
  });

  it("init -o into a folder that does not exist: one clear line, no stack trace", async () => {
    const r = await run(["init", "-o", "missing/dir/x.yaml"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe("dockinit: cannot write missing/dir/x.yaml: a folder on the way does not exist (ENOENT)\n");
    expect(existsSync(join(dir, "missing"))).toBe(false);
  });

  it("init writes the schema file its $schema comment names", async () => {
    const r = await run(["init"]);
    expect(r.code, r.stderr).toBe(0);
    const starter = readFileSync(join(dir, "dockinit.yaml"), "utf8");
    const named = /\$schema=(\S+)/.exec(starter)![1]!;
    const schema = JSON.parse(readFileSync(join(dir, named), "utf8"));
    expect(schema).toEqual(JSON.parse((await run(["schema"])).stdout));
    // A second init (forced) rewrites both; one into a sub-folder puts the schema beside it.
    mkdirSync(join(dir, "infra"));
    expect((await run(["init", "-o", "infra/dockinit.yaml"])).code).toBe(0);
    expect(existsSync(join(dir, "infra", named))).toBe(true);
  });

  it.each([
    ["nftables", "", "inet dockinit", "forward", ["inet"]],
    ["iptables", "  backend: iptables\n", "filter", "DOCKINIT-USER", [4, 6]],
  ])("explain --json prints the rules as data (%s): backend, table, chain, family, the loaded line and its words", async (backend, extra, table, chain, families) => {
    writeFileSync(join(dir, "dockinit.yaml"), `version: 1\nname: web\nfirewall:\n${extra}  published:\n    default: deny\n    rules:\n      - { port: 8080, allow: [203.0.113.0/24] }\n`);
    const text = await run(["explain"]);
    const r = await run(["explain", "--json"]);
    expect(r.code, r.stderr).toBe(0);
    const data = JSON.parse(r.stdout) as { ok: boolean; backend: string; rules: { backend: string; table: string; chain: string; family: unknown; line: string; means: string; kind: string }[] };
    expect(data).toMatchObject({ ok: true, backend });
    const allows = data.rules.filter((x) => x.line.includes("203.0.113.0/24") && x.chain === chain);
    expect(allows.length).toBeGreaterThan(0);
    for (const a of allows) expect(a).toMatchObject({ backend, table });
    expect([...new Set(data.rules.filter((x) => x.backend === backend).map((x) => x.family))].sort()).toEqual(families);
    // Each of dockinit's own rules is the line the text listing shows, with the same words.
    const own = data.rules.filter((x) => x.kind === "rule");
    expect(own.length).toBeGreaterThan(3);
    for (const rule of own) expect(text.stdout).toContain(`${rule.line}    # ${rule.means}`);
  });

  it("a file written by something else (binary) is refused as a config with one error", async () => {
    writeFileSync(join(dir, "blob.yaml"), Buffer.from(Array.from({ length: 3072 }, (_, i) => (i * 97 + 13) % 256)));
    const r = await run(["check", "blob.yaml"]);
    expect(r.code).toBe(1);
    expect(r.stderr.length).toBeLessThan(1000);
    expect(r.stderr).toMatch(/error DI006/);
    const piped = await run(["check", "-c", "-"], { stdin: readFileSync(join(dir, "blob.yaml")) });
    expect(piped.code).toBe(1);
    expect(piped.stderr.length).toBeLessThan(1000);
    expect(piped.stderr).toMatch(/^<stdin>.*error DI006/m);
  });
});
