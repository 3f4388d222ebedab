// Build: the CLI as one CommonJS file (bin/dockinit.cjs) with templates
// precompiled, and the library as ESM (dist/index.js) with type declarations.
// Bundling is what keeps `dockinit render` close to bare node start-up.
import { readFile } from "node:fs/promises";
import { execFileSync } from "node:child_process";
import { build } from "esbuild";
import { precompileHbs } from "./hbs-precompile.mjs";

const hbsPlugin = {
  name: "hbs",
  setup(b) {
    b.onLoad({ filter: /\.hbs$/ }, async (args) => ({ contents: precompileHbs(await readFile(args.path, "utf8")), loader: "js" }));
  },
};

const common = { bundle: true, platform: "node", target: "node20", plugins: [hbsPlugin], legalComments: "none", logLevel: "warning" };

await build({
  ...common,
  entryPoints: ["src/cli/bin.ts"],
  outfile: "bin/dockinit.cjs",
  format: "cjs",
  banner: { js: "#!/usr/bin/env node" },
  // Parsing the bundle is most of start-up; minified source parses faster.
  minify: true,
  // The AWS SDK stays outside the bundle and is import()ed only by diff/push.
  external: ["@aws-sdk/*"],
});

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
