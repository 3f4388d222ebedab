// The launch-template uploader against a mocked EC2 (aws-sdk-client-mock): the
// exact requests `push` and `diff` send, what they skip, and how every EC2
// failure becomes one line. The points moto cannot show (it ignores
// SourceVersion and ClientToken) are proven here; test/system/moto.test.ts
// runs the same commands against moto's EC2 server.
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import {
  CreateLaunchTemplateCommand,
  CreateLaunchTemplateVersionCommand,
  DescribeLaunchTemplatesCommand,
  DescribeLaunchTemplateVersionsCommand,
  EC2Client,
  EC2ServiceException,
  ModifyLaunchTemplateCommand,
  type DescribeLaunchTemplateVersionsCommandInput,
  type LaunchTemplateVersion,
} from "@aws-sdk/client-ec2";
import { mockClient, type AwsClientStub } from "aws-sdk-client-mock";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  createEc2Client,
  decodeUserData,
  describeAwsError,
  diffTemplate,
  pushUserData,
  resolveEc2ClientSettings,
  sha256Hex,
  templateClientToken,
  userDataText,
  versionClientToken,
  versionDescription,
  type AwsFailure,
  type PushInput,
} from "../../src/aws/launch-template.js";
import { parseVersionSelector } from "../../src/cli/aws-commands.js";
import { runCli } from "../../src/cli/main.js";
import { REPO } from "../support/fixtures.js";

// The SDK's "2027 releases need Node 22" notice is not what these tests are about.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = "true";

const TEMPLATE_ID = "lt-0123456789abcdef0";
const NAME = "build-runner";
const OLD_USER_DATA = Buffer.from("#cloud-config\nruncmd: [echo old]\n");
const NEW_USER_DATA = Buffer.from("#cloud-config\nruncmd: [echo new]\n");
const b64 = (b: Uint8Array) => Buffer.from(b).toString("base64");

function ec2Error(name: string, extra: { fault?: "client" | "server"; attempts?: number; message?: string; throttling?: boolean } = {}): EC2ServiceException {
  const err = new EC2ServiceException({
    name,
    $fault: extra.fault ?? "client",
    $metadata: { httpStatusCode: extra.fault === "server" ? 503 : 400, attempts: extra.attempts ?? 1 },
    message: extra.message ?? `${name} happened`,
  });
  if (extra.throttling) err.$retryable = { throttling: true };
  return err;
}

/**
 * A template whose default is version 2 and latest version 4; each version's
 * user-data is given per test. DescribeLaunchTemplateVersions answers for
 * $Latest, $Default and numbers the way EC2 does.
 */
function givenTemplate(ec2: AwsClientStub<EC2Client>, userDataByVersion: Record<number, Buffer | undefined>, opts: { defaultVersion?: number } = {}) {
  const defaultVersion = opts.defaultVersion ?? 2;
  const latest = Math.max(...Object.keys(userDataByVersion).map(Number));
  ec2.on(DescribeLaunchTemplatesCommand).resolves({
    LaunchTemplates: [{ LaunchTemplateId: TEMPLATE_ID, LaunchTemplateName: NAME, DefaultVersionNumber: defaultVersion, LatestVersionNumber: latest }],
  });
  ec2.on(DescribeLaunchTemplateVersionsCommand).callsFake((input: DescribeLaunchTemplateVersionsCommandInput) => {
    const wanted = input.Versions?.[0];
    const n = wanted === "$Latest" ? latest : wanted === "$Default" ? defaultVersion : Number(wanted);
    if (!(n in userDataByVersion)) throw ec2Error("InvalidLaunchTemplateId.VersionNotFound");
    const data = userDataByVersion[n];
    const version: LaunchTemplateVersion = {
      LaunchTemplateId: TEMPLATE_ID,
      LaunchTemplateName: NAME,
      VersionNumber: n,
      DefaultVersion: n === defaultVersion,
      LaunchTemplateData: { ImageId: "ami-0abcdef1234567890", InstanceType: "t3.micro", ...(data ? { UserData: b64(data) } : {}) },
    };
    return { LaunchTemplateVersions: [version] };
  });
}

const pushInput = (over: Partial<PushInput> = {}): PushInput => ({
  templateName: NAME,
  sourceVersion: "$Latest",
  userData: NEW_USER_DATA,
  bundleName: "build-runner",
  setDefault: false,
  dryRun: false,
  create: false,
  ...over,
});

describe("launch-template core (mocked EC2)", () => {
  let client: EC2Client;
  let ec2: AwsClientStub<EC2Client>;

  beforeEach(() => {
    client = new EC2Client({ region: "eu-west-1", credentials: { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "secret" } });
    // Per instance, so the HTTP-level tests below keep a real `send`.
    ec2 = mockClient(client);
  });
  afterEach(() => ec2.restore());

  describe("push", () => {
    it("creates a version from the resolved source with only UserData, a sha256 description and a derived ClientToken", async () => {
      givenTemplate(ec2, { 1: OLD_USER_DATA, 2: OLD_USER_DATA, 3: OLD_USER_DATA, 4: OLD_USER_DATA });
      ec2.on(CreateLaunchTemplateVersionCommand).resolves({ LaunchTemplateVersion: { LaunchTemplateId: TEMPLATE_ID, VersionNumber: 5 } });

      const r = await pushUserData(client, pushInput());

      const sha = sha256Hex(NEW_USER_DATA);
      const creates = ec2.commandCalls(CreateLaunchTemplateVersionCommand);
      expect(creates).toHaveLength(1);
      // toStrictEqual: no other LaunchTemplateData key, no DryRun, nothing extra.
      expect(creates[0]?.args[0].input).toStrictEqual({
        LaunchTemplateId: TEMPLATE_ID,
        SourceVersion: "4",
        VersionDescription: `dockinit build-runner sha256:${sha}`,
        ClientToken: versionClientToken(TEMPLATE_ID, 4, sha),
        LaunchTemplateData: { UserData: b64(NEW_USER_DATA) },
      });
      expect(ec2.commandCalls(DescribeLaunchTemplateVersionsCommand)[0]?.args[0].input).toStrictEqual({ LaunchTemplateId: TEMPLATE_ID, Versions: ["$Latest"] });
      expect(ec2.commandCalls(ModifyLaunchTemplateCommand)).toHaveLength(0);
      expect(r).toEqual({
        ok: true,
        outcome: expect.objectContaining({
          action: "created-version",
          templateId: TEMPLATE_ID,
          region: "eu-west-1",
          sourceVersion: 4,
          version: 5,
          defaultVersion: 2,
          previousDefaultVersion: 2,
          bytes: NEW_USER_DATA.length,
          sha256: sha,
          dryRun: false,
        }),
      });
    });

    it.each([
      ["$Latest", "4"],
      ["$Default", "2"],
      ["3", "3"],
    ])("source version %s is sent as SourceVersion %s (the version that was compared)", async (selector, expected) => {
      givenTemplate(ec2, { 1: OLD_USER_DATA, 2: OLD_USER_DATA, 3: OLD_USER_DATA, 4: OLD_USER_DATA });
      ec2.on(CreateLaunchTemplateVersionCommand).resolves({ LaunchTemplateVersion: { VersionNumber: 5 } });
      const r = await pushUserData(client, pushInput({ sourceVersion: selector }));
      expect(r.ok).toBe(true);
      expect(ec2.commandCalls(DescribeLaunchTemplateVersionsCommand)[0]?.args[0].input.Versions).toEqual([selector]);
      expect(ec2.commandCalls(CreateLaunchTemplateVersionCommand)[0]?.args[0].input.SourceVersion).toBe(expected);
    });

    it("creates nothing when the source version already has identical user-data", async () => {
      givenTemplate(ec2, { 1: OLD_USER_DATA, 2: OLD_USER_DATA, 3: NEW_USER_DATA });
      const r = await pushUserData(client, pushInput());
      expect(ec2.commandCalls(CreateLaunchTemplateVersionCommand)).toHaveLength(0);
      expect(ec2.commandCalls(ModifyLaunchTemplateCommand)).toHaveLength(0);
      expect(r).toEqual({ ok: true, outcome: expect.objectContaining({ action: "unchanged", version: 3, defaultVersion: 2 }) });
    });

    it("compares against the source version only: identical data in another version still gives a new version", async () => {
      givenTemplate(ec2, { 1: NEW_USER_DATA, 2: OLD_USER_DATA });
      ec2.on(CreateLaunchTemplateVersionCommand).resolves({ LaunchTemplateVersion: { VersionNumber: 3 } });
      const r = await pushUserData(client, pushInput({ sourceVersion: "$Default" }));
      expect(r).toEqual({ ok: true, outcome: expect.objectContaining({ action: "created-version", version: 3, sourceVersion: 2 }) });
    });

    it("compares bytes: the same text gzipped is not identical user-data", async () => {
      givenTemplate(ec2, { 1: OLD_USER_DATA, 2: gzipSync(NEW_USER_DATA) });
      ec2.on(CreateLaunchTemplateVersionCommand).resolves({ LaunchTemplateVersion: { VersionNumber: 3 } });
      const r = await pushUserData(client, pushInput());
      expect(r.ok && r.outcome.action).toBe("created-version");
    });

    it("--set-default moves the default to the new version with ModifyLaunchTemplate", async () => {
      givenTemplate(ec2, { 1: OLD_USER_DATA, 2: OLD_USER_DATA });
      ec2.on(CreateLaunchTemplateVersionCommand).resolves({ LaunchTemplateVersion: { VersionNumber: 3 } });
      ec2.on(ModifyLaunchTemplateCommand).resolves({ LaunchTemplate: { LaunchTemplateId: TEMPLATE_ID, DefaultVersionNumber: 3 } });
      const r = await pushUserData(client, pushInput({ setDefault: true }));
      expect(ec2.commandCalls(ModifyLaunchTemplateCommand).map((c) => c.args[0].input)).toStrictEqual([{ LaunchTemplateId: TEMPLATE_ID, DefaultVersion: "3" }]);
      expect(r).toEqual({ ok: true, outcome: expect.objectContaining({ version: 3, defaultVersion: 3, previousDefaultVersion: 2 }) });
    });

    it("--set-default with identical data makes the carrying version default (repairs a half-done push), once", async () => {
      givenTemplate(ec2, { 1: OLD_USER_DATA, 2: OLD_USER_DATA, 3: NEW_USER_DATA }, { defaultVersion: 2 });
      ec2.on(ModifyLaunchTemplateCommand).resolves({ LaunchTemplate: { DefaultVersionNumber: 3 } });
      const r = await pushUserData(client, pushInput({ setDefault: true }));
      expect(ec2.commandCalls(CreateLaunchTemplateVersionCommand)).toHaveLength(0);
      expect(ec2.commandCalls(ModifyLaunchTemplateCommand).map((c) => c.args[0].input)).toStrictEqual([{ LaunchTemplateId: TEMPLATE_ID, DefaultVersion: "3" }]);
      expect(r).toEqual({ ok: true, outcome: expect.objectContaining({ action: "unchanged", version: 3, defaultVersion: 3 }) });

      ec2.reset();
      givenTemplate(ec2, { 1: OLD_USER_DATA, 2: OLD_USER_DATA, 3: NEW_USER_DATA }, { defaultVersion: 3 });
      await pushUserData(client, pushInput({ setDefault: true }));
      expect(ec2.commandCalls(ModifyLaunchTemplateCommand)).toHaveLength(0);
    });

    it("reports a created version whose default could not be moved, with what was done", async () => {
      givenTemplate(ec2, { 1: OLD_USER_DATA, 2: OLD_USER_DATA });
      ec2.on(CreateLaunchTemplateVersionCommand).resolves({ LaunchTemplateVersion: { VersionNumber: 3 } });
      ec2.on(ModifyLaunchTemplateCommand).rejects(ec2Error("UnauthorizedOperation", { message: "You are not authorized. Encoded authorization failure message: AAAA" }));
      const r = await pushUserData(client, pushInput({ setDefault: true }));
      expect(r.ok).toBe(false);
      if (r.ok) return;
      expect(r.failure.kind).toBe("access-denied");
      expect(r.failure.message).toBe(
        "created version 3 of build-runner, but could not make it the default: access denied: this identity may not call ec2:ModifyLaunchTemplate on launch template build-runner in eu-west-1 (UnauthorizedOperation); grant it in IAM",
      );
      expect(r.completed).toEqual(expect.objectContaining({ action: "created-version", version: 3 }));
    });

    it("sends the same ClientToken when a push is retried after a lost response", async () => {
      givenTemplate(ec2, { 1: OLD_USER_DATA, 2: OLD_USER_DATA });
      const lost = Object.assign(new Error("socket hang up"), { code: "ECONNRESET" });
      ec2.on(CreateLaunchTemplateVersionCommand).rejectsOnce(lost).resolves({ LaunchTemplateVersion: { VersionNumber: 3 } });

      const first = await pushUserData(client, pushInput());
      expect(first.ok || first.failure.kind).toBe("network");
      const second = await pushUserData(client, pushInput());
      expect(second.ok).toBe(true);

      const tokens = ec2.commandCalls(CreateLaunchTemplateVersionCommand).map((c) => c.args[0].input.ClientToken);
      expect(tokens).toHaveLength(2);
      expect(tokens[0]).toBe(tokens[1]);
    });

    it.each([
      ["another template", () => versionClientToken("lt-0fffffffffffffff0", 2, sha256Hex(NEW_USER_DATA))],
      ["another source version", () => versionClientToken(TEMPLATE_ID, 3, sha256Hex(NEW_USER_DATA))],
      ["other user-data", () => versionClientToken(TEMPLATE_ID, 2, sha256Hex(OLD_USER_DATA))],
    ])("the ClientToken changes with %s, and fits EC2's limit", (_what, other) => {
      const token = versionClientToken(TEMPLATE_ID, 2, sha256Hex(NEW_USER_DATA));
      expect(other()).not.toBe(token);
      for (const t of [token, other(), templateClientToken(NAME, sha256Hex(NEW_USER_DATA))]) {
        expect(t).toMatch(/^dockinit-[0-9a-f]{55}$/);
        expect(t.length).toBeLessThanOrEqual(64);
      }
    });

    it("VersionDescription stays within 255 characters and always keeps the full sha256", () => {
      const sha = sha256Hex(NEW_USER_DATA);
      expect(versionDescription("x".repeat(400), sha)).toHaveLength(255);
      expect(versionDescription("x".repeat(400), sha).endsWith(` sha256:${sha}`)).toBe(true);
      expect(versionDescription("web", sha)).toBe(`dockinit web sha256:${sha}`);
    });

    describe("--dry-run", () => {
      it("sends DryRun and reports the version it would create (latest + 1), changing nothing", async () => {
        givenTemplate(ec2, { 1: OLD_USER_DATA, 2: OLD_USER_DATA, 3: OLD_USER_DATA }, { defaultVersion: 1 });
        ec2.on(CreateLaunchTemplateVersionCommand).rejects(ec2Error("DryRunOperation", { message: "Request would have succeeded, but DryRun flag is set." }));
        const r = await pushUserData(client, pushInput({ dryRun: true, sourceVersion: "$Default" }));
        const input = ec2.commandCalls(CreateLaunchTemplateVersionCommand)[0]?.args[0].input;
        expect(input).toEqual(expect.objectContaining({ DryRun: true, SourceVersion: "1", LaunchTemplateData: { UserData: b64(NEW_USER_DATA) } }));
        expect(ec2.commandCalls(ModifyLaunchTemplateCommand)).toHaveLength(0);
        expect(r).toEqual({ ok: true, outcome: expect.objectContaining({ action: "would-create-version", version: 4, sourceVersion: 1, defaultVersion: 1, dryRun: true }) });
      });

      it("with --set-default also dry-runs ModifyLaunchTemplate (on a version that exists)", async () => {
        givenTemplate(ec2, { 1: OLD_USER_DATA, 2: OLD_USER_DATA });
        ec2.on(CreateLaunchTemplateVersionCommand).rejects(ec2Error("DryRunOperation"));
        ec2.on(ModifyLaunchTemplateCommand).rejects(ec2Error("DryRunOperation"));
        const r = await pushUserData(client, pushInput({ dryRun: true, setDefault: true }));
        expect(ec2.commandCalls(ModifyLaunchTemplateCommand).map((c) => c.args[0].input)).toStrictEqual([{ LaunchTemplateId: TEMPLATE_ID, DefaultVersion: "2", DryRun: true }]);
        expect(r).toEqual({ ok: true, outcome: expect.objectContaining({ action: "would-create-version", version: 3, defaultVersion: 3, previousDefaultVersion: 2 }) });
      });

      it("reports UnauthorizedOperation from the dry run as access denied", async () => {
        givenTemplate(ec2, { 1: OLD_USER_DATA, 2: OLD_USER_DATA });
        ec2.on(CreateLaunchTemplateVersionCommand).rejects(ec2Error("UnauthorizedOperation"));
        const r = await pushUserData(client, pushInput({ dryRun: true }));
        expect(r.ok || r.failure).toEqual(expect.objectContaining({ kind: "access-denied", operation: "CreateLaunchTemplateVersion" }));
      });

      it("treats an answer without DryRunOperation as a failure, not as a plan", async () => {
        givenTemplate(ec2, { 1: OLD_USER_DATA, 2: OLD_USER_DATA });
        ec2.on(CreateLaunchTemplateVersionCommand).resolves({ LaunchTemplateVersion: { VersionNumber: 3 } });
        const r = await pushUserData(client, pushInput({ dryRun: true }));
        expect(r.ok || r.failure.code).toBe("DryRunIgnored");
      });
    });

    describe("a missing template", () => {
      it.each([
        ["EC2's NotFound error", (ec2: AwsClientStub<EC2Client>) => ec2.on(DescribeLaunchTemplatesCommand).rejects(ec2Error("InvalidLaunchTemplateName.NotFoundException"))],
        ["an empty answer", (ec2: AwsClientStub<EC2Client>) => ec2.on(DescribeLaunchTemplatesCommand).resolves({ LaunchTemplates: [] })],
      ])("is an error without --create (%s), and nothing is created", async (_how, arrange) => {
        arrange(ec2);
        const r = await pushUserData(client, pushInput());
        expect(r.ok).toBe(false);
        if (r.ok) return;
        expect(r.failure.kind).toBe("not-found");
        expect(r.failure.message).toMatch(/^launch template build-runner not found in eu-west-1; .*--create/);
        expect(ec2.commandCalls(CreateLaunchTemplateCommand)).toHaveLength(0);
        expect(ec2.commandCalls(CreateLaunchTemplateVersionCommand)).toHaveLength(0);
      });

      it("is created with --create, the user-data as version 1", async () => {
        ec2.on(DescribeLaunchTemplatesCommand).rejects(ec2Error("InvalidLaunchTemplateName.NotFoundException"));
        ec2.on(CreateLaunchTemplateCommand).resolves({ LaunchTemplate: { LaunchTemplateId: TEMPLATE_ID, LaunchTemplateName: NAME, DefaultVersionNumber: 1, LatestVersionNumber: 1 } });
        const r = await pushUserData(client, pushInput({ create: true, setDefault: true }));
        const sha = sha256Hex(NEW_USER_DATA);
        expect(ec2.commandCalls(CreateLaunchTemplateCommand).map((c) => c.args[0].input)).toStrictEqual([
          {
            LaunchTemplateName: NAME,
            VersionDescription: `dockinit build-runner sha256:${sha}`,
            ClientToken: templateClientToken(NAME, sha),
            LaunchTemplateData: { UserData: b64(NEW_USER_DATA) },
          },
        ]);
        expect(ec2.commandCalls(ModifyLaunchTemplateCommand)).toHaveLength(0);
        expect(r).toEqual({ ok: true, outcome: expect.objectContaining({ action: "created-template", templateId: TEMPLATE_ID, version: 1, defaultVersion: 1 }) });
      });

      it("--create --dry-run asks EC2 with DryRun and creates nothing", async () => {
        ec2.on(DescribeLaunchTemplatesCommand).rejects(ec2Error("InvalidLaunchTemplateName.NotFoundException"));
        ec2.on(CreateLaunchTemplateCommand).rejects(ec2Error("DryRunOperation"));
        const r = await pushUserData(client, pushInput({ create: true, dryRun: true }));
        expect(ec2.commandCalls(CreateLaunchTemplateCommand)[0]?.args[0].input.DryRun).toBe(true);
        expect(r).toEqual({ ok: true, outcome: expect.objectContaining({ action: "would-create-template", version: 1 }) });
      });

      it("--create on an existing template just pushes a version", async () => {
        givenTemplate(ec2, { 1: OLD_USER_DATA });
        ec2.on(CreateLaunchTemplateVersionCommand).resolves({ LaunchTemplateVersion: { VersionNumber: 2 } });
        const r = await pushUserData(client, pushInput({ create: true }));
        expect(ec2.commandCalls(CreateLaunchTemplateCommand)).toHaveLength(0);
        expect(r.ok && r.outcome.action).toBe("created-version");
      });
    });

    it.each<[string, (ec2: AwsClientStub<EC2Client>) => void, string, Partial<AwsFailure>, RegExp]>([
      [
        "a version that does not exist",
        (ec2) => givenTemplate(ec2, { 1: OLD_USER_DATA }),
        "9",
        { kind: "version-not-found", operation: "DescribeLaunchTemplateVersions" },
        /^launch template build-runner in eu-west-1 has no version 9 /,
      ],
      [
        "throttling that outlasted the SDK's retries",
        (ec2) => {
          givenTemplate(ec2, { 1: OLD_USER_DATA });
          ec2.on(CreateLaunchTemplateVersionCommand).rejects(ec2Error("RequestLimitExceeded", { attempts: 3, throttling: true }));
        },
        "$Latest",
        { kind: "throttled", code: "RequestLimitExceeded", operation: "CreateLaunchTemplateVersion" },
        /^EC2 is throttling requests \(RequestLimitExceeded\); CreateLaunchTemplateVersion still failed after 3 attempts; wait/,
      ],
      [
        "the version limit",
        (ec2) => {
          givenTemplate(ec2, { 1: OLD_USER_DATA });
          ec2.on(CreateLaunchTemplateVersionCommand).rejects(ec2Error("VersionLimitExceeded"));
        },
        "$Latest",
        { kind: "limit", code: "VersionLimitExceeded" },
        /has reached its limit of versions .*delete-launch-template-versions/,
      ],
      [
        "denied reads",
        (ec2) => ec2.on(DescribeLaunchTemplatesCommand).rejects(ec2Error("UnauthorizedOperation")),
        "$Latest",
        { kind: "access-denied", operation: "DescribeLaunchTemplates" },
        /may not call ec2:DescribeLaunchTemplates on launch template build-runner/,
      ],
    ])("maps %s to one line", async (_what, arrange, sourceVersion, expected, message) => {
      arrange(ec2);
      const r = await pushUserData(client, pushInput({ sourceVersion }));
      expect(r.ok).toBe(false);
      if (r.ok) return;
      expect(r.failure).toEqual(expect.objectContaining(expected));
      expect(r.failure.message).toMatch(message);
      expect(r.failure.message).not.toContain("\n");
      expect(ec2.commandCalls(ModifyLaunchTemplateCommand)).toHaveLength(0);
    });

    it("a client without a region fails with the three ways to give one", async () => {
      const noRegion = new EC2Client({ region: () => Promise.reject<string>(new Error("Region is missing")), credentials: { accessKeyId: "a", secretAccessKey: "b" } });
      const r = await pushUserData(noRegion, pushInput());
      expect(r.ok || r.failure).toEqual(
        expect.objectContaining({ kind: "region", message: "no AWS region: pass --region, set launch_template.region in dockinit.yaml, or set AWS_REGION" }),
      );
    });
  });

  describe("diff", () => {
    it("asks for the version by name and reports equal bytes with an empty patch", async () => {
      givenTemplate(ec2, { 1: OLD_USER_DATA, 2: NEW_USER_DATA });
      const r = await diffTemplate(client, { templateName: NAME, version: "$Latest", userData: NEW_USER_DATA, renderedLabel: "dockinit.yaml" });
      expect(ec2.commandCalls(DescribeLaunchTemplateVersionsCommand)[0]?.args[0].input).toStrictEqual({ LaunchTemplateName: NAME, Versions: ["$Latest"] });
      expect(r).toEqual({ ok: true, outcome: expect.objectContaining({ equal: true, sameText: true, version: 2, templateId: TEMPLATE_ID, patch: "" }) });
    });

    it("prints a unified diff of the decoded texts when they differ", async () => {
      givenTemplate(ec2, { 1: OLD_USER_DATA });
      const r = await diffTemplate(client, { templateName: NAME, version: "1", userData: NEW_USER_DATA, renderedLabel: "dockinit.yaml" });
      expect(r.ok).toBe(true);
      if (!r.ok) return;
      expect(r.outcome.equal).toBe(false);
      expect(r.outcome.patch).toBe(
        ["--- build-runner version 1", "+++ dockinit.yaml (rendered)", "@@ -1,2 +1,2 @@", " #cloud-config", "-runcmd: [echo old]", "+runcmd: [echo new]", ""].join("\n"),
      );
    });

    it("gunzips either side: same text, different bytes is not equal but has no patch", async () => {
      givenTemplate(ec2, { 1: gzipSync(NEW_USER_DATA) });
      const r = await diffTemplate(client, { templateName: NAME, version: "1", userData: NEW_USER_DATA, renderedLabel: "dockinit.yaml" });
      expect(r.ok && r.outcome).toEqual(expect.objectContaining({ equal: false, sameText: true, patch: "", current: expect.objectContaining({ gzip: true }) }));
    });

    it("a version without user-data diffs against empty text", async () => {
      givenTemplate(ec2, { 1: undefined });
      const r = await diffTemplate(client, { templateName: NAME, version: "1", userData: NEW_USER_DATA, renderedLabel: "x.yaml" });
      expect(r.ok && r.outcome.patch).toContain("@@ -0,0 +1,2 @@");
    });

    it("a missing template is a not-found failure that points at push --create", async () => {
      ec2.on(DescribeLaunchTemplateVersionsCommand).rejects(ec2Error("InvalidLaunchTemplateName.NotFoundException"));
      const r = await diffTemplate(client, { templateName: NAME, version: "$Latest", userData: NEW_USER_DATA, renderedLabel: "x.yaml" });
      expect(r.ok || r.failure.message).toBe(
        "launch template build-runner not found in eu-west-1 (InvalidLaunchTemplateName.NotFoundException); check the name and region, or make it with `dockinit push --create`",
      );
    });
  });
});

describe("error mapping", () => {
  const ctx = { operation: "CreateLaunchTemplateVersion", templateName: NAME, region: "us-east-2", version: "7", endpoint: "http://127.0.0.1:9" };
  it.each<[string, unknown, AwsFailure["kind"], RegExp]>([
    ["NotFound by name", ec2Error("InvalidLaunchTemplateName.NotFoundException"), "not-found", /^launch template build-runner not found in us-east-2/],
    ["NotFound by id", ec2Error("InvalidLaunchTemplateId.NotFound"), "not-found", /not found in us-east-2/],
    ["a missing version", ec2Error("InvalidLaunchTemplateId.VersionNotFound"), "version-not-found", /has no version 7/],
    ["UnauthorizedOperation", ec2Error("UnauthorizedOperation"), "access-denied", /^access denied: this identity may not call ec2:CreateLaunchTemplateVersion/],
    ["AccessDenied", ec2Error("AccessDenied"), "access-denied", /^access denied/],
    ["bad credentials", ec2Error("AuthFailure", { message: "AWS was not able to validate the provided access credentials" }), "credentials", /^AWS rejected the credentials \(AuthFailure\): AWS was not able/],
    ["an expired session", ec2Error("RequestExpired"), "credentials", /rejected the credentials \(RequestExpired\)/],
    ["no credentials at all", Object.assign(new Error("Could not load credentials from any providers"), { name: "CredentialsProviderError" }), "credentials", /^no usable AWS credentials/],
    ["throttling", ec2Error("RequestLimitExceeded", { attempts: 3 }), "throttled", /after 3 attempts; wait a minute/],
    ["a throttling-flagged error", ec2Error("SomethingNew", { throttling: true }), "throttled", /throttling requests \(SomethingNew\)/],
    ["the version limit", ec2Error("VersionLimitExceeded"), "limit", /build-runner has reached its limit of versions/],
    ["the template limit", ec2Error("LaunchTemplateLimitExceeded"), "limit", /limit of launch templates in us-east-2/],
    ["another limit", ec2Error("ResourceLimitExceeded"), "limit", /an EC2 limit was reached \(ResourceLimitExceeded\)/],
    ["a name taken meanwhile", ec2Error("InvalidLaunchTemplateName.AlreadyExistsException"), "conflict", /already exists in us-east-2/],
    ["a reused ClientToken", ec2Error("IdempotentParameterMismatch"), "conflict", /ClientToken/],
    ["bad user-data", ec2Error("InvalidUserData.Malformed", { message: "bad\nsecond line" }), "invalid-request", /^EC2 rejected CreateLaunchTemplateVersion \(InvalidUserData.Malformed\): bad$/],
    ["a refused connection", Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:9"), { code: "ECONNREFUSED", $metadata: { attempts: 3 } }), "network", /^cannot reach EC2 at http:\/\/127.0.0.1:9 \(ECONNREFUSED\) after 3 attempts/],
    ["a timeout", Object.assign(new Error("timed out"), { name: "TimeoutError" }), "network", /cannot reach EC2/],
    ["a server fault", ec2Error("InternalError", { fault: "server", attempts: 3 }), "server", /internal error \(InternalError\) after 3 attempts/],
    ["anything else", ec2Error("Weird"), "other", /^CreateLaunchTemplateVersion failed \(Weird\): Weird happened$/],
    ["a thrown string", "boom", "other", /failed \(Error\): boom/],
  ])("%s", (_name, err, kind, message) => {
    const f = describeAwsError(err, ctx);
    expect(f.kind).toBe(kind);
    expect(f.message).toMatch(message);
    expect(f.message).not.toContain("\n");
  });

  it("drops EC2's encoded authorization blob", () => {
    const f = describeAwsError(ec2Error("Weird", { message: "Nope. Encoded authorization failure message: QUJDREVGRw==" }), ctx);
    expect(f.message).toBe("CreateLaunchTemplateVersion failed (Weird): Nope.");
  });
});

describe("user-data decoding", () => {
  it("base64 → bytes → text, gunzipping gzip", () => {
    const text = "#cloud-config\npackages: [jq]\n";
    expect(userDataText(decodeUserData(b64(Buffer.from(text))))).toBe(text);
    expect(userDataText(decodeUserData(b64(gzipSync(text))))).toBe(text);
    expect(decodeUserData(undefined)).toHaveLength(0);
  });

  it("says so instead of throwing when gzip data is corrupt", () => {
    const corrupt = Buffer.concat([gzipSync("hello").subarray(0, 12), Buffer.from("garbage")]);
    expect(userDataText(corrupt)).toMatch(/^<gzip data that does not decompress/);
  });
});

describe("client settings", () => {
  it.each<[string, { region?: string; profile?: string }, Record<string, string>, string | undefined, object]>([
    ["--region beats AWS_REGION and the config", { region: "eu-north-1" }, { AWS_REGION: "us-west-2" }, "eu-west-1", { region: "eu-north-1", regionSource: "--region" }],
    // The file names where the template lives: a shell's leftover AWS_REGION must not move it (issue 27).
    ["the config beats AWS_REGION", {}, { AWS_REGION: "us-west-2" }, "eu-west-1", { region: "eu-west-1", regionSource: "launch_template.region" }],
    ["AWS_REGION when the config names none", {}, { AWS_REGION: "us-west-2" }, undefined, { region: "us-west-2", regionSource: "AWS_REGION" }],
    ["the config's region when nothing else", {}, {}, "eu-west-1", { region: "eu-west-1", regionSource: "launch_template.region" }],
    ["the SDK's chain (profile) when no region anywhere", {}, {}, undefined, { region: undefined, regionSource: "sdk" }],
    ["AWS_ENDPOINT_URL_EC2 beats AWS_ENDPOINT_URL", {}, { AWS_ENDPOINT_URL_EC2: "http://a:1", AWS_ENDPOINT_URL: "http://b:2" }, undefined, { endpoint: "http://a:1" }],
    ["AWS_ENDPOINT_URL alone", {}, { AWS_ENDPOINT_URL: "http://b:2" }, undefined, { endpoint: "http://b:2" }],
    ["AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", {}, { AWS_ENDPOINT_URL_EC2: "http://a:1", AWS_IGNORE_CONFIGURED_ENDPOINT_URLS: "true" }, undefined, { endpoint: undefined }],
    [
      "environment keys when no profile is named",
      {},
      { AWS_ACCESS_KEY_ID: "AKID", AWS_SECRET_ACCESS_KEY: "s", AWS_SESSION_TOKEN: "t" },
      undefined,
      { credentials: { accessKeyId: "AKID", secretAccessKey: "s", sessionToken: "t" }, profile: undefined },
    ],
    ["--profile wins over environment keys", { profile: "ops" }, { AWS_ACCESS_KEY_ID: "AKID", AWS_SECRET_ACCESS_KEY: "s" }, undefined, { profile: "ops", credentials: undefined }],
    ["AWS_PROFILE too", {}, { AWS_PROFILE: "dev", AWS_ACCESS_KEY_ID: "AKID", AWS_SECRET_ACCESS_KEY: "s" }, undefined, { profile: "dev", credentials: undefined }],
    ["AWS_MAX_ATTEMPTS", {}, { AWS_MAX_ATTEMPTS: "5" }, undefined, { maxAttempts: 5 }],
  ])("%s", (_name, flags, env, configRegion, expected) => {
    // Key by key, so `undefined` means "not set" rather than "any".
    const settings: Record<string, unknown> = { ...resolveEc2ClientSettings(flags, env, configRegion) };
    for (const [key, value] of Object.entries(expected)) expect(settings[key], key).toEqual(value);
  });

  it.each([
    ["$Latest", "$Latest"],
    ["latest", "$Latest"],
    ["$Default", "$Default"],
    ["DEFAULT", "$Default"],
    ["12", "12"],
  ])("version selector %s → %s", (text, expected) => {
    expect(parseVersionSelector(text)).toBe(expected);
  });

  it.each(["", "0", "-1", "1.5", "$Newest", "v3"])("version selector %j is refused", (text) => {
    expect(() => parseVersionSelector(text)).toThrow(/\$Latest/);
  });
});

// ── The real SDK over HTTP: retries happen below `send`, so only a server shows them ──

/** A fake EC2 query endpoint: answers by Action, records every request body. */
class FakeEc2 {
  readonly bodies: URLSearchParams[] = [];
  private server: Server | undefined;
  /** Action → the responses to give in turn (the last one repeats). */
  script: Record<string, { status: number; xml: string }[]> = {};

  async start(): Promise<string> {
    this.server = createServer((req, res) => {
      void readBody(req).then((body) => {
        const params = new URLSearchParams(body);
        this.bodies.push(params);
        const queue = this.script[params.get("Action") ?? ""] ?? [];
        const next = (queue.length > 1 ? queue.shift() : queue[0]) ?? { status: 400, xml: errorXml("InvalidAction", "not scripted") };
        res.writeHead(next.status, { "content-type": "text/xml" }).end(next.xml);
      });
    });
    await new Promise<void>((resolve) => this.server?.listen(0, "127.0.0.1", resolve));
    const addr = this.server.address();
    if (addr === null || typeof addr === "string") throw new Error("no port");
    return `http://127.0.0.1:${addr.port}`;
  }

  calls(action: string): URLSearchParams[] {
    return this.bodies.filter((b) => b.get("Action") === action);
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

const NS = 'xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"';
const errorXml = (code: string, message: string) => `<?xml version="1.0"?><Response><Errors><Error><Code>${code}</Code><Message>${message}</Message></Error></Errors><RequestID>r</RequestID></Response>`;
const ok = (xml: string) => ({ status: 200, xml });
const describeTemplatesXml = `<DescribeLaunchTemplatesResponse ${NS}><requestId>r</requestId><launchTemplates><item><launchTemplateId>${TEMPLATE_ID}</launchTemplateId><launchTemplateName>${NAME}</launchTemplateName><defaultVersionNumber>1</defaultVersionNumber><latestVersionNumber>1</latestVersionNumber></item></launchTemplates></DescribeLaunchTemplatesResponse>`;
const describeVersionsXml = `<DescribeLaunchTemplateVersionsResponse ${NS}><requestId>r</requestId><launchTemplateVersionSet><item><launchTemplateId>${TEMPLATE_ID}</launchTemplateId><launchTemplateName>${NAME}</launchTemplateName><versionNumber>1</versionNumber><defaultVersion>true</defaultVersion><launchTemplateData><userData>${b64(OLD_USER_DATA)}</userData></launchTemplateData></item></launchTemplateVersionSet></DescribeLaunchTemplateVersionsResponse>`;
const createdVersionXml = `<CreateLaunchTemplateVersionResponse ${NS}><requestId>r</requestId><launchTemplateVersion><launchTemplateId>${TEMPLATE_ID}</launchTemplateId><versionNumber>2</versionNumber></launchTemplateVersion></CreateLaunchTemplateVersionResponse>`;
const throttled = { status: 503, xml: errorXml("RequestLimitExceeded", "Request limit exceeded.") };

describe("the real SDK against a fake EC2 endpoint", () => {
  const fake = new FakeEc2();
  let endpoint: string;
  beforeAll(async () => {
    endpoint = await fake.start();
  });
  afterAll(() => fake.stop());
  beforeEach(() => {
    fake.bodies.length = 0;
  });

  const realClient = (env: Record<string, string> = {}) =>
    createEc2Client(resolveEc2ClientSettings({}, { AWS_REGION: "us-east-1", AWS_ENDPOINT_URL_EC2: endpoint, AWS_ACCESS_KEY_ID: "AKID", AWS_SECRET_ACCESS_KEY: "s", ...env }));

  it("the SDK's own retry of a throttled create resends the same ClientToken and body", async () => {
    fake.script = {
      DescribeLaunchTemplates: [ok(describeTemplatesXml)],
      DescribeLaunchTemplateVersions: [ok(describeVersionsXml)],
      CreateLaunchTemplateVersion: [throttled, ok(createdVersionXml)],
    };
    const client = realClient();
    try {
      const r = await pushUserData(client, pushInput());
      expect(r).toEqual({ ok: true, outcome: expect.objectContaining({ action: "created-version", version: 2, sourceVersion: 1 }) });
    } finally {
      client.destroy();
    }
    const creates = fake.calls("CreateLaunchTemplateVersion");
    expect(creates).toHaveLength(2);
    expect(creates[0]?.get("ClientToken")).toBe(versionClientToken(TEMPLATE_ID, 1, sha256Hex(NEW_USER_DATA)));
    expect(creates[1]?.toString()).toBe(creates[0]?.toString());
    // On the wire: only UserData under LaunchTemplateData.
    expect([...(creates[0]?.keys() ?? [])].filter((k) => k.startsWith("LaunchTemplateData"))).toEqual(["LaunchTemplateData.UserData"]);
    expect(creates[0]?.get("LaunchTemplateData.UserData")).toBe(b64(NEW_USER_DATA));
    expect(creates[0]?.get("SourceVersion")).toBe("1");
  });

  it("throttling that outlasts the SDK's retries becomes one 'throttled' line", async () => {
    fake.script = {
      DescribeLaunchTemplates: [ok(describeTemplatesXml)],
      DescribeLaunchTemplateVersions: [ok(describeVersionsXml)],
      CreateLaunchTemplateVersion: [throttled],
    };
    const client = realClient({ AWS_MAX_ATTEMPTS: "2" });
    try {
      const r = await pushUserData(client, pushInput());
      expect(r.ok || r.failure).toEqual(
        expect.objectContaining({ kind: "throttled", message: expect.stringMatching(/^EC2 is throttling requests \(RequestLimitExceeded\); CreateLaunchTemplateVersion still failed after 2 attempts/) }),
      );
    } finally {
      client.destroy();
    }
    expect(fake.calls("CreateLaunchTemplateVersion")).toHaveLength(2);
  });
});

// ── Through the CLI (runCli), with EC2 mocked at the class ───────────────

describe("dockinit diff/push CLI", () => {
  let dir: string;
  let ec2: AwsClientStub<EC2Client>;

  beforeAll(() => {
    ec2 = mockClient(EC2Client);
  });
  afterAll(() => ec2.restore());
  beforeEach(() => {
    ec2.reset();
    dir = mkdtempSync(join(tmpdir(), "dockinit-aws-"));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const CONFIG = (lt: string) => `version: 1\nname: build-runner\nlaunch_template:\n${lt}`;
  const env = { AWS_ACCESS_KEY_ID: "AKID", AWS_SECRET_ACCESS_KEY: "s" };

  async function cli(argv: string[], extraEnv: Record<string, string> = {}) {
    let stdout = "";
    let stderr = "";
    const code = await runCli(argv, {
      stdout: (t) => (stdout += typeof t === "string" ? t : Buffer.from(t).toString("utf8")),
      stderr: (t) => (stderr += t),
      cwd: dir,
      env: { ...env, ...extraEnv },
    });
    return { code, stdout, stderr };
  }

  /** The bytes `render` would produce for the config in `dir`. */
  async function renderedBytes(): Promise<Buffer> {
    let out = Buffer.alloc(0);
    await runCli(["render", "--stdout"], { stdout: (t) => (out = Buffer.concat([out, Buffer.from(t)])), stderr: () => undefined, cwd: dir, env: {} });
    return out;
  }

  it("push uses launch_template from dockinit.yaml (name, region, source_version, set_default) and prints id, version, default, bytes", async () => {
    writeFileSync(join(dir, "dockinit.yaml"), CONFIG("  name: build-runner\n  region: eu-central-1\n  source_version: 1\n  set_default: true\n"));
    givenTemplate(ec2, { 1: OLD_USER_DATA, 2: OLD_USER_DATA });
    ec2.on(CreateLaunchTemplateVersionCommand).resolves({ LaunchTemplateVersion: { VersionNumber: 3 } });
    ec2.on(ModifyLaunchTemplateCommand).resolves({ LaunchTemplate: { DefaultVersionNumber: 3 } });

    const r = await cli(["push"]);
    expect(r.stderr).toBe("dockinit: region eu-central-1 (from launch_template.region in dockinit.yaml)\n");
    expect(r.code).toBe(0);
    const bytes = await renderedBytes();
    expect(ec2.commandCalls(CreateLaunchTemplateVersionCommand)[0]?.args[0].input).toEqual(
      expect.objectContaining({ SourceVersion: "1", LaunchTemplateData: { UserData: b64(bytes) } }),
    );
    expect(r.stdout).toBe(
      [
        `launch template: build-runner (${TEMPLATE_ID}) in eu-central-1`,
        "created version: 3 from version 1",
        "default version: 3 (was 2)",
        `user-data:       ${bytes.length.toLocaleString("en-US")} bytes, sha256 ${sha256Hex(bytes)}`,
        "",
      ].join("\n"),
    );
  });

  it("flags override dockinit.yaml: --launch-template, --source-version, --no-set-default, --region", async () => {
    writeFileSync(join(dir, "dockinit.yaml"), CONFIG("  name: other\n  region: eu-central-1\n  set_default: true\n"));
    givenTemplate(ec2, { 1: OLD_USER_DATA, 2: OLD_USER_DATA, 3: OLD_USER_DATA });
    ec2.on(CreateLaunchTemplateVersionCommand).resolves({ LaunchTemplateVersion: { VersionNumber: 4 } });
    const r = await cli(["push", "--launch-template", NAME, "--source-version", "default", "--no-set-default", "--region", "ap-south-1", "--json"], { AWS_REGION: "us-west-2" });
    expect(r.code).toBe(0);
    expect(ec2.commandCalls(DescribeLaunchTemplatesCommand)[0]?.args[0].input).toEqual({ LaunchTemplateNames: [NAME] });
    expect(ec2.commandCalls(CreateLaunchTemplateVersionCommand)[0]?.args[0].input.SourceVersion).toBe("2");
    expect(ec2.commandCalls(ModifyLaunchTemplateCommand)).toHaveLength(0);
    expect(JSON.parse(r.stdout)).toEqual(expect.objectContaining({ ok: true, action: "created-version", region: "ap-south-1", version: 4, defaultVersion: 2 }));
  });

  it("an invalid config exits 1 (diff: 2, its code for trouble) and never talks to EC2", async () => {
    writeFileSync(join(dir, "dockinit.yaml"), "version: 1\nephemeral_ports:\n  to: 61000-49152\nlaunch_template:\n  name: build-runner\n");
    for (const [cmd, exit] of [[["push"], 1], [["diff"], 2], [["push", "--json"], 1], [["diff", "--json"], 2]] as const) {
      const r = await cli([...cmd]);
      expect(r.code, cmd.join(" ")).toBe(exit);
      expect(r.stderr).toContain("error DI021");
    }
    expect(ec2.calls()).toHaveLength(0);
  });

  it("without a template name it is a usage error (exit 2)", async () => {
    writeFileSync(join(dir, "dockinit.yaml"), "version: 1\n");
    const r = await cli(["push", "--region", "us-east-1"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe("dockinit: no launch template: pass --launch-template NAME or set launch_template.name in dockinit.yaml\n");
    expect(ec2.calls()).toHaveLength(0);
  });

  it("a bad --version is a usage error (exit 2)", async () => {
    writeFileSync(join(dir, "dockinit.yaml"), CONFIG("  name: build-runner\n"));
    const r = await cli(["diff", "--version", "", "--region", "us-east-1"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/quote '\$Latest'/);
  });

  it.each([
    ["InvalidLaunchTemplateName.NotFoundException", /^dockinit: launch template build-runner not found in us-east-1; .* \(region from AWS_REGION\)$/m],
    ["UnauthorizedOperation", /^dockinit: access denied: /],
    ["RequestLimitExceeded", /^dockinit: EC2 is throttling requests/],
  ])("AWS failure %s exits 3 with one line on stderr after the region's", async (code, line) => {
    writeFileSync(join(dir, "dockinit.yaml"), CONFIG("  name: build-runner\n"));
    ec2.on(DescribeLaunchTemplatesCommand).rejects(ec2Error(code));
    const r = await cli(["push", "--json"], { AWS_REGION: "us-east-1" });
    expect(r.code).toBe(3);
    const lines = r.stderr.trimEnd().split("\n");
    expect(lines).toHaveLength(2);
    expect(lines[0]).toBe("dockinit: region us-east-1 (from AWS_REGION)");
    expect(lines[1]).toMatch(line);
    expect(JSON.parse(r.stdout)).toEqual({ ok: false, error: expect.objectContaining({ code }) });
  });

  it("diff exits 1 with a patch on stdout when different, 0 when equal; --version defaults to source_version", async () => {
    writeFileSync(join(dir, "dockinit.yaml"), CONFIG("  name: build-runner\n  region: us-east-1\n  source_version: $Default\n"));
    const bytes = await renderedBytes();
    givenTemplate(ec2, { 1: OLD_USER_DATA, 2: bytes, 3: OLD_USER_DATA });

    const same = await cli(["diff"]);
    expect(ec2.commandCalls(DescribeLaunchTemplateVersionsCommand)[0]?.args[0].input.Versions).toEqual(["$Default"]);
    expect(same.code).toBe(0);
    expect(same.stdout).toBe("");
    expect(same.stderr).toMatch(/^dockinit: region us-east-1 \(from launch_template.region in dockinit.yaml\)\nbuild-runner version 2 \(lt-0123456789abcdef0, us-east-1\) has exactly this user-data/);

    const different = await cli(["diff", "--version", "3"]);
    expect(different.code).toBe(1);
    expect(different.stdout).toMatch(/^--- build-runner version 3\n\+\+\+ dockinit.yaml \(rendered\)\n@@ /);
    expect(different.stdout).toContain("-runcmd: [echo old]");

    const asJson = await cli(["diff", "--version", "3", "--json"]);
    expect(asJson.code).toBe(1);
    expect(JSON.parse(asJson.stdout)).toEqual(expect.objectContaining({ ok: true, equal: false, version: 3, patch: different.stdout }));
  });

  it("push --dry-run prints the plan and exit 0", async () => {
    writeFileSync(join(dir, "dockinit.yaml"), CONFIG("  name: build-runner\n  region: us-east-1\n"));
    givenTemplate(ec2, { 1: OLD_USER_DATA, 2: OLD_USER_DATA });
    ec2.on(CreateLaunchTemplateVersionCommand).rejects(ec2Error("DryRunOperation"));
    const r = await cli(["push", "--dry-run"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("dry run:         EC2 says creating version 3 from version 2 would succeed; nothing changed\n");
    expect(r.stdout).toContain("default version: 2 (would stay)\n");
  });
});

// ── Lazy loading, proven on the built binary ────────────────────────────

describe("the SDK is loaded by diff/push/rollout only", () => {
  // `npm test` builds bin/dockinit.cjs first (as for the real-process test in cli.test.ts).
  const bin = join(REPO, "bin", "dockinit.cjs");
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "dockinit-lazy-"));
    // Records every @aws-sdk/* module the process requires (the bundle keeps
    // the SDK external, so each SDK load goes through Module._load).
    writeFileSync(
      join(dir, "trace.cjs"),
      `const Module = require("node:module"); const fs = require("node:fs"); const seen = new Set();
const load = Module._load;
Module._load = function (request, ...rest) { if (request.startsWith("@aws-sdk/")) seen.add(request); return load.call(this, request, ...rest); };
const builtins = () => process.moduleLoadList.filter((m) => m.startsWith("NativeModule ")).map((m) => m.slice("NativeModule ".length));
process.on("exit", () => fs.writeFileSync(process.env.TRACE_OUT, JSON.stringify({ sdk: [...seen], builtins: builtins() })));\n`,
    );
    // diff, push and rollout need a config of the user's (never the built-in default).
    writeFileSync(join(dir, "aws.yaml"), "version: 1\nname: lazy\n");
    // Small enough to ship uncompressed: a gzip bundle to stdout asks whether stdout is a terminal, which loads net.
    writeFileSync(join(dir, "plain.yaml"), "version: 1\nname: plain\ndocker:\n  daemon:\n    dns: [amazon]\n");
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  function sdkModulesLoadedBy(args: string[]) {
    const out = join(dir, "loaded.json");
    rmSync(out, { force: true });
    const r = spawnSync(process.execPath, ["--require", join(dir, "trace.cjs"), bin, ...args], {
      cwd: dir,
      encoding: "utf8",
      env: {
        PATH: process.env.PATH,
        TRACE_OUT: out,
        AWS_ACCESS_KEY_ID: "AKID",
        AWS_SECRET_ACCESS_KEY: "s",
        AWS_REGION: "us-east-1",
        // Nothing listens on port 1: the push fails fast, after loading the SDK.
        AWS_ENDPOINT_URL_EC2: "http://127.0.0.1:1",
        AWS_ENDPOINT_URL_AUTO_SCALING: "http://127.0.0.1:1",
        AWS_MAX_ATTEMPTS: "1",
      },
      timeout: 30_000,
    });
    const trace = JSON.parse(readFileSync(out, "utf8")) as { sdk: string[]; builtins: string[] };
    return { status: r.status, stderr: r.stderr, loaded: trace.sdk, builtins: trace.builtins };
  }

  it.skipIf(!existsSync(bin)).each([["render", "--stdout"], ["check"], ["schema"]])("%s loads no @aws-sdk module", (...args) => {
    const r = sdkModulesLoadedBy(args);
    expect(r.status, r.stderr).toBe(0);
    expect(r.loaded).toEqual([]);
  });

  // Start-up cost without a clock: each of these Node built-ins takes 2-3 ms
  // to load, and a check or a render to stdout needs none of them.
  it.skipIf(!existsSync(bin)).each([["render", "--stdout", "-c", "plain.yaml"], ["check"]])("%s loads no node:crypto, child_process, net or tty", (...args) => {
    const r = sdkModulesLoadedBy(args);
    expect(r.status, r.stderr).toBe(0);
    expect(r.builtins).toContain("fs"); // the tracer sees built-ins (push's check below shows it sees lazy ones)
    expect(r.builtins.filter((m) => ["crypto", "child_process", "net", "tty"].includes(m))).toEqual([]);
  });

  it.skipIf(!existsSync(bin))("push does (the tracer sees it), and an unreachable endpoint exits 3", () => {
    const r = sdkModulesLoadedBy(["push", "aws.yaml", "--launch-template", NAME]);
    expect(r.status, `${r.stderr}(exit 2 "unknown command"? bin/dockinit.cjs is stale: npm run build)`).toBe(3);
    expect(r.stderr).toMatch(/^dockinit: cannot reach EC2 at http:\/\/127.0.0.1:1 \(ECONNREFUSED\)/m);
    expect(r.loaded).toContain("@aws-sdk/client-ec2");
    expect(r.builtins).toContain("crypto");
    // The Auto Scaling client is rollout's alone (rollout, push --rollout).
    expect(r.loaded).not.toContain("@aws-sdk/client-auto-scaling");
  });

  it.skipIf(!existsSync(bin))("rollout loads the Auto Scaling client (and an unreachable endpoint exits 3)", () => {
    const r = sdkModulesLoadedBy(["rollout", "aws.yaml", "--launch-template", NAME, "--dry-run"]);
    expect(r.status, r.stderr).toBe(3);
    expect(r.loaded).toEqual(expect.arrayContaining(["@aws-sdk/client-auto-scaling", "@aws-sdk/client-ec2"]));
  });
});
