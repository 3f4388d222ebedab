import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["dist/", "bin/", "out/", "node_modules/", ".cache/", ".scratch/", "test/fixtures/"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    // The launcher is plain CommonJS by necessity (it wraps the CJS bundle).
    files: ["**/*.cjs"],
    languageOptions: { sourceType: "commonjs", globals: { require: "readonly", module: "writable", __dirname: "readonly", process: "readonly" } },
    rules: { "@typescript-eslint/no-require-imports": "off" },
  },
  {
    languageOptions: { globals: { process: "readonly", console: "readonly", Buffer: "readonly", URL: "readonly" } },
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
    },
  },
  {
    // Data flows one way: config -> model -> render -> bundle. The earlier
    // stages never import a later one.
    files: ["src/config/**/*.ts", "src/model.ts"],
    rules: { "no-restricted-imports": ["error", { patterns: [{ group: ["**/render/*", "**/bundle/*", "**/aws/*", "**/cli/*"], message: "config and model come before render, bundle, aws and cli" }] }] },
  },
);
