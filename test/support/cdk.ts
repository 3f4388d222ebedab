// AWS CDK (aws-cdk-lib and constructs) for the README's CDK recipe test.
//
// aws-cdk-lib is not one of the package's dependencies (188 MB installed, for
// one example): .ci/run installs it, pinned, into a folder outside the clone
// ($cache/cdk, like the moto venv) and names its node_modules in
// DOCKINIT_CDK_NODE_MODULES; tests never install it. Locally a missing install
// skips the test with the reason; in CI (DOCKINIT_REQUIRE_SYSTEM_TESTS=1) it is
// a failure, like every other system prerequisite (see system.ts).
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { REPO } from "./fixtures.js";
import { systemTestsRequired } from "./system.js";

/** The versions .ci/run installs (keep the two in step). */
export const CDK_PACKAGES = ["aws-cdk-lib@2.278.0", "constructs@10.8.1"];

export const CDK_NODE_MODULES = process.env.DOCKINIT_CDK_NODE_MODULES ?? join(REPO, ".cache", "cdk", "node_modules");

const INSTALL_HINT = `npm install --prefix .cache/cdk --no-audit --no-fund ${CDK_PACKAGES.join(" ")}`;

/** The installed version of a package in `nodeModules`, or undefined. */
export function installedVersion(name: string, nodeModules: string = CDK_NODE_MODULES): string | undefined {
  const manifest = join(nodeModules, name, "package.json");
  if (!existsSync(manifest)) return undefined;
  return (JSON.parse(readFileSync(manifest, "utf8")) as { version?: string }).version;
}

/** Why the CDK recipe cannot run here, or undefined when it can. */
export function cdkMissing(nodeModules: string = CDK_NODE_MODULES): string | undefined {
  for (const name of ["aws-cdk-lib", "constructs"]) {
    if (!installedVersion(name, nodeModules)) {
      return `needs ${name}: ${join(nodeModules, name)} is missing (${INSTALL_HINT}, or set DOCKINIT_CDK_NODE_MODULES)`;
    }
  }
  // The recipe imports "dockinit": the built package and its types, as a
  // user's project would; the test renders out/user-data with the built CLI.
  for (const built of ["dist/index.js", "dist/index.d.ts", "bin/dockinit.cjs"]) {
    if (!existsSync(join(REPO, built))) return `needs the built package: ${built} is missing (npm run build)`;
  }
  return undefined;
}

/** For `describe.skipIf(...)`, like skipUnless(): a reason locally, a throw in CI. */
export function skipUnlessCdk(): string | false {
  const missing = cdkMissing();
  if (!missing) return false;
  if (systemTestsRequired) throw new Error(`DOCKINIT_REQUIRE_SYSTEM_TESTS=1 but this test ${missing}`);
  console.warn(`skipping: ${missing}`);
  return missing;
}
