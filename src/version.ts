// The tool's version. package.json is its one source: the build (esbuild's
// `define`, scripts/build.mjs) and the tests (vitest.config.ts) put it in as a
// literal, so no run reads package.json at start-up.
declare const __DOCKINIT_VERSION__: string | undefined;

export const VERSION: string = typeof __DOCKINIT_VERSION__ === "string" ? __DOCKINIT_VERSION__ : "0.0.0-unbuilt";
