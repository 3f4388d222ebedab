// push's decision table (src/aws/push-plan.ts): flags and what EC2 said in,
// the one step push takes out. Pure: no SDK, no mock, no network. The
// requests each step sends are in aws-launch-template.test.ts.
import { describe, expect, it } from "vitest";
import { planPush, templateClientToken, versionClientToken, versionDescription, type PushFacts, type PushInput, type PushPlan } from "../../src/aws/push-plan.js";
import { sha256 } from "../../src/hash.js";

const OLD = Buffer.from("#cloud-config\nruncmd: [echo old]\n");
const NEW = Buffer.from("#cloud-config\nruncmd: [echo new]\n");
const SHA = sha256(NEW);
const ID = "lt-0123456789abcdef0";

const input = (over: Partial<PushInput> = {}): PushInput => ({
  templateName: "build-runner",
  sourceVersion: "$Latest",
  userData: NEW,
  bundleName: "build-runner",
  setDefault: false,
  dryRun: false,
  create: false,
  ...over,
});

/** A template whose default is `def` and latest is 4; the source version resolved to `source` with `bytes`. */
const facts = (source: number, bytes: Buffer, def = 2): PushFacts => ({
  template: { id: ID, defaultVersion: def, latestVersion: 4 },
  source: { version: source, userData: bytes },
});

const createVersion = (sourceVersion: number, moveDefault: boolean, defaultBefore = 2): PushPlan => ({
  step: "create-version",
  templateId: ID,
  sourceVersion,
  defaultBefore,
  nextVersion: 5,
  clientToken: versionClientToken(ID, sourceVersion, SHA),
  description: versionDescription("build-runner", SHA),
  moveDefault,
});

describe("planPush: the decision table", () => {
  it.each<[string, Partial<PushInput>, PushFacts, PushPlan]>([
    // No template.
    ["no template, no --create: refuse (nothing is sent)", {}, {}, { step: "refuse-missing-template" }],
    ["no template, no --create, dry run: refuse as well", { dryRun: true }, {}, { step: "refuse-missing-template" }],
    [
      "no template, --create: create it with the user-data as version 1",
      { create: true },
      {},
      { step: "create-template", clientToken: templateClientToken("build-runner", SHA), description: versionDescription("build-runner", SHA) },
    ],
    [
      "no template, --create --set-default: still create-template (version 1 is the default anyway)",
      { create: true, setDefault: true },
      {},
      { step: "create-template", clientToken: templateClientToken("build-runner", SHA), description: versionDescription("build-runner", SHA) },
    ],
    // Template exists, source differs.
    ["source differs: new version from the source's number", {}, facts(4, OLD), createVersion(4, false)],
    ["source differs, --set-default: new version, then move the default", { setDefault: true }, facts(4, OLD), createVersion(4, true)],
    ["source differs, --create on an existing template: --create changes nothing", { create: true }, facts(3, OLD), createVersion(3, false)],
    ["source differs, dry run: the same plan (execution sends DryRun)", { dryRun: true }, facts(4, OLD), createVersion(4, false)],
    ["source has no user-data at all: new version", {}, facts(4, Buffer.alloc(0)), createVersion(4, false)],
    // Template exists, source identical.
    ["source identical: no-op", {}, facts(4, NEW), { step: "unchanged", templateId: ID, version: 4, defaultBefore: 2, moveDefault: false }],
    [
      "source identical, --set-default, source is not the default: make it the default (repairs a half-done push)",
      { setDefault: true },
      facts(4, NEW),
      { step: "unchanged", templateId: ID, version: 4, defaultBefore: 2, moveDefault: true },
    ],
    [
      "source identical, --set-default, source already the default: nothing at all",
      { setDefault: true },
      facts(2, NEW),
      { step: "unchanged", templateId: ID, version: 2, defaultBefore: 2, moveDefault: false },
    ],
  ])("%s", (_name, over, given, expected) => {
    expect(planPush(input(over), given)).toEqual(expected);
  });

  it("identical means byte-identical: the same text gzipped is a new version", () => {
    const { gzipSync } = process.getBuiltinModule("node:zlib");
    expect(planPush(input(), facts(4, gzipSync(NEW))).step).toBe("create-version");
  });

  it("the ClientToken depends on template, source version and bytes, so a retry is the same request and a change is not", () => {
    const token = (f: PushFacts, bytes = NEW) => (planPush(input({ userData: bytes }), f) as { clientToken: string }).clientToken;
    expect(token(facts(4, OLD))).toBe(token(facts(4, OLD)));
    expect(token(facts(3, OLD))).not.toBe(token(facts(4, OLD)));
    expect(token(facts(4, OLD), Buffer.from("#cloud-config\n"))).not.toBe(token(facts(4, OLD)));
    expect(token({ template: { id: "lt-other", defaultVersion: 2, latestVersion: 4 }, source: { version: 4, userData: OLD } })).not.toBe(token(facts(4, OLD)));
  });

  it("an existing template without its source version is a programming error, not a plan", () => {
    expect(() => planPush(input(), { template: { id: ID, defaultVersion: 1, latestVersion: 1 } })).toThrow(/needs its source version/);
  });
});
