// Build: the CLI as one CommonJS file (bin/dockinit-main.cjs, started by the
// launcher bin/dockinit.cjs) with templates precompiled, and the library twice,
// as ES module (dist/index.js) and CommonJS (dist/index.cjs), each with its own
// type declarations (dist/index.d.ts, dist/index.d.cts): one bundled
// declaration file per format, so no relative import inside them can resolve
// to the other format's files. Bundling is what keeps `dockinit render` close
// to bare node start-up. `npm ci` and `npm pack` run this too (`prepare`): a
// package packed from a clean checkout has everything `files` lists.
import { readFile } from "node:fs/promises";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { isAbsolute, join, resolve } from "node:path";
import { execFile, execFileSync } from "node:child_process";
import { promisify } from "node:util";
import { build } from "esbuild";
import { precompileHbs } from "./hbs-precompile.mjs";

const require = createRequire(import.meta.url);

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
const pkg = JSON.parse(await readFile("package.json", "utf8"));
const define = { __DOCKINIT_VERSION__: JSON.stringify(pkg.version) };

// The declarations take longest: tsc emits them into a scratch folder while
// esbuild and the code cache run below, then rollup-plugin-dts bundles them
// (see buildTypes). --noCheck: checking is `npm run typecheck`'s (CI runs it);
// here it would only add a second to every `npm ci` (prepare), not change a byte.
rmSync("dist", { recursive: true, force: true });
mkdirSync("dist");
const typesDir = mkdtempSync(join(tmpdir(), "dockinit-types-"));
/** Settles to tsc's failure, or undefined: awaited after the other steps. */
const tscFailure = promisify(execFile)(process.execPath, [require.resolve("typescript/bin/tsc"), "-p", "tsconfig.build.json", "--noCheck", "--outDir", typesDir]).then(
  () => undefined,
  (err) => new Error(`tsc -p tsconfig.build.json failed:\n${err.stdout ?? ""}${err.stderr ?? ""}`),
);

const common = { bundle: true, platform: "node", target: "node20", plugins: [hbsPlugin, lazyChildProcess], legalComments: "none", logLevel: "warning", define };

await build({
  ...common,
  entryPoints: ["src/cli/bin.ts"],
  outfile: "bin/dockinit-main.cjs",
  format: "cjs",
  // Parsing the bundle is most of start-up; minified source parses faster.
  minify: true,
  // The AWS SDK stays outside the bundle and is import()ed only by diff/push;
  // so does the JSON Schema validator, which only --cloud-init loads
  // (src/bundle/cloud-init/lazy.ts): neither adds to every start's parse.
  external: ["@aws-sdk/*", "jsonschema"],
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

// The library: what package.json's dependencies name stays an import (the
// user's install holds it, deduplicated with theirs); the rest is bundled: the
// Handlebars runtime, which is all of Handlebars the precompiled templates
// need (its compiler, a development dependency, runs only here).
const external = Object.keys(pkg.dependencies ?? {}).flatMap((name) => [name, `${name}/*`]);
const library = { ...common, entryPoints: ["src/index.ts"], external };
await Promise.all([build({ ...library, outfile: "dist/index.js", format: "esm" }), build({ ...library, outfile: "dist/index.cjs", format: "cjs" })]);

try {
  const failure = await tscFailure;
  if (failure) throw failure;
  await buildTypes(join(typesDir, "index.d.ts"));
} finally {
  rmSync(typesDir, { recursive: true, force: true });
}

/**
 * One declaration file for each format, the same text: it imports only other
 * packages (zod, which ships types for both), so under "require" it resolves
 * to their CommonJS declarations and under "import" to their ES ones, and no
 * relative import is left to resolve to the other format's files. Buffer in
 * the API is @types/node's, which the reference says (skipLibCheck: false
 * would report an unknown Buffer otherwise).
 */
async function buildTypes(entry) {
  const { rollup } = await import("rollup");
  const { dts } = await import("rollup-plugin-dts");
  const bundle = await rollup({
    input: entry,
    plugins: [dts()],
    // Other packages' types stay imports (what the user's install resolves).
    external: (id) => !id.startsWith(".") && !isAbsolute(id),
    onwarn: (warning) => {
      throw new Error(`rollup-plugin-dts: ${warning.message}`);
    },
  });
  const { output } = await bundle.generate({ format: "es" });
  await bundle.close();
  if (output.length !== 1) throw new Error(`rollup-plugin-dts wrote ${output.length} files, expected one`);
  // A type from a package the install does not have would be an error in
  // every user's project: only dependencies (and Node's own modules) may be named.
  const packageOf = (id) => id.split("/").slice(0, id.startsWith("@") ? 2 : 1).join("/");
  const undeclared = output[0].imports.filter((id) => !id.startsWith("node:") && !(packageOf(id) in (pkg.dependencies ?? {})));
  if (undeclared.length > 0) throw new Error(`the declarations import ${undeclared.join(", ")}, which package.json's dependencies do not name`);
  const text = `/// <reference types="node" />\n${output[0].code}`;
  writeFileSync("dist/index.d.ts", text);
  writeFileSync("dist/index.d.cts", text);
}
