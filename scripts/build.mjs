// Build: the CLI as one CommonJS file (bin/dockinit.cjs) with templates
// precompiled, and the library as ESM (dist/index.js) with type declarations.
// Bundling is what keeps `dockinit render` close to bare node start-up.
import { readFile } from "node:fs/promises";
import { chmodSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { execFileSync } from "node:child_process";
import { build } from "esbuild";
import { precompileHbs } from "./hbs-precompile.mjs";

const hbsPlugin = {
  name: "hbs",
  setup(b) {
    b.onLoad({ filter: /\.hbs$/ }, async (args) => ({ contents: precompileHbs(await readFile(args.path, "utf8")), loader: "js" }));
  },
};

// commander requires node:child_process at load time (for executable
// subcommands, which dockinit has none of); loading it pulls in node:net and
// costs ~4 ms of every start. Give commander a proxy that loads it on first use.
const lazyChildProcess = {
  name: "lazy-child-process",
  setup(b) {
    b.onResolve({ filter: /^(node:)?child_process$/ }, (args) =>
      /[\\/]node_modules[\\/]commander[\\/]/.test(args.importer) ? { path: "child_process", namespace: "lazy-child-process" } : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: "lazy-child-process" }, () => ({
      contents: 'let m; const load = () => (m ??= require("node:child_process")); module.exports = new Proxy({}, { get: (_, k) => load()[k], has: (_, k) => k in load() });',
      loader: "js",
    }));
  },
};

// package.json is the one source of the version (src/version.ts): put in as a
// literal, so no run reads package.json at start-up.
const { version } = JSON.parse(await readFile("package.json", "utf8"));
const define = { __DOCKINIT_VERSION__: JSON.stringify(version) };

const common = { bundle: true, platform: "node", target: "node20", plugins: [hbsPlugin, lazyChildProcess], legalComments: "none", logLevel: "warning", define };

await build({
  ...common,
  entryPoints: ["src/cli/bin.ts"],
  outfile: "bin/dockinit-main.cjs",
  format: "cjs",
  // Parsing the bundle is most of start-up; minified source parses faster.
  minify: true,
  // The AWS SDK stays outside the bundle and is import()ed only by diff/push.
  external: ["@aws-sdk/*"],
  // yaml's ES module build (published for browsers; the same source as its
  // CommonJS build) is scope-hoisted and tree-shaken, where the CommonJS one
  // is a chain of wrapped modules initialised one by one at start-up.
  alias: { yaml: "./node_modules/yaml/browser/index.js" },
});

// The executable is a small launcher that runs the bundle from V8's code
// cache (one per V8 version, see scripts/launcher.cjs); the cache for this
// Node is made here by one representative run (a render), and other
// Nodes make their own on first run. The launcher names those by the
// bundle's hash, so a cache is never read for other bytes.
const buildId = createHash("sha256").update(readFileSync("bin/dockinit-main.cjs")).digest("hex").slice(0, 16);
const launcher = readFileSync("scripts/launcher.cjs", "utf8");
if (!launcher.includes('"@BUILD@"')) throw new Error("scripts/launcher.cjs: no \"@BUILD@\" to fill in");
writeFileSync("bin/dockinit.cjs", launcher.replace('"@BUILD@"', JSON.stringify(buildId)), { mode: 0o755 });
chmodSync("bin/dockinit.cjs", 0o755);
for (const name of readdirSync("bin")) if (/^dockinit-main\.cjs\..*cache$/.test(name)) rmSync(join("bin", name));
{
  const tmp = mkdtempSync(join(tmpdir(), "dockinit-build-"));
  const env = { ...process.env, DOCKINIT_WRITE_CODE_CACHE: "1" };
  const sample = "test/fixtures/kitchen-sink/dockinit.yaml"; // every section; else the built-in default
  const config = existsSync(sample) ? ["-c", resolve(sample)] : [];
  execFileSync(process.execPath, [resolve("bin/dockinit.cjs"), "render", ...config, "-o", join(tmp, "out")], { env, cwd: tmp, stdio: "ignore" });
  rmSync(tmp, { recursive: true, force: true });
}

await build({
  ...common,
  entryPoints: ["src/index.ts"],
  outfile: "dist/index.js",
  format: "esm",
  packages: "external",
});

if (!process.argv.includes("--no-types")) {
  execFileSync("npx", ["tsc", "-p", "tsconfig.build.json"], { stdio: "inherit" });
}
