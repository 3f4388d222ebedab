// The launch-template uploader behind `dockinit diff` and `dockinit push`.
//
// Only the CLI loads this module, with a dynamic import, because it pulls in
// @aws-sdk/client-ec2: `render` and `check` must start without the SDK.
// Everything here takes an EC2Client (so tests inject a mocked or redirected
// one) and returns results or failures as data. Nothing prints, nothing exits.
import { gunzipSync } from "node:zlib";
import { sha256 as sha256Hex } from "../hash.js";
import {
  CreateLaunchTemplateCommand,
  CreateLaunchTemplateVersionCommand,
  DescribeLaunchTemplatesCommand,
  DescribeLaunchTemplateVersionsCommand,
  EC2Client,
  ModifyLaunchTemplateCommand,
  type LaunchTemplate,
  type LaunchTemplateVersion,
} from "@aws-sdk/client-ec2";
import { createTwoFilesPatch, FILE_HEADERS_ONLY } from "diff";
import { planPush, type PushFacts, type PushInput } from "./push-plan.js";

export { planPush, templateClientToken, versionClientToken, versionDescription, type PushFacts, type PushInput, type PushPlan } from "./push-plan.js";

// ── Inputs and results ────────────────────────────────────────────────

export type PushAction =
  /** A new version was created from the source version. */
  | "created-version"
  /** The template did not exist; it was created with the user-data as version 1. */
  | "created-template"
  /** The source version already carries these exact bytes; no version was created. */
  | "unchanged"
  /** Dry run: EC2 says creating the version would succeed. */
  | "would-create-version"
  /** Dry run: EC2 says creating the template would succeed. */
  | "would-create-template";

export interface PushOutcome {
  action: PushAction;
  templateName: string;
  /** Undefined only when the template does not exist yet (would-create-template). */
  templateId?: string;
  region: string;
  /** The resolved source version (absent when a template is created). */
  sourceVersion?: number;
  /**
   * The version that carries the user-data: the new one, the one a dry run
   * would create (latest + 1), or the source version when unchanged.
   */
  version: number;
  /** The default version after the push (for a dry run: after it would run). */
  defaultVersion: number;
  /** The default version before the push; equal to defaultVersion when untouched. */
  previousDefaultVersion?: number;
  bytes: number;
  sha256: string;
  /** The idempotency token sent with the create call (absent when nothing was created). */
  clientToken?: string;
  dryRun: boolean;
}

/** What went wrong talking to EC2, as one line a person can act on. */
export interface AwsFailure {
  kind:
    | "not-found"
    | "version-not-found"
    | "access-denied"
    | "credentials"
    | "region"
    | "throttled"
    | "limit"
    | "conflict"
    | "invalid-request"
    | "network"
    | "server"
    | "other";
  /** EC2's error code (e.g. "UnauthorizedOperation") or the JS error's name. */
  code: string;
  /** The EC2 API operation that failed, e.g. "CreateLaunchTemplateVersion". */
  operation: string;
  message: string;
}

export type PushResult =
  | { ok: true; outcome: PushOutcome }
  /** `completed` is what had already happened when a later step failed. */
  | { ok: false; failure: AwsFailure; completed?: PushOutcome };

export interface DiffInput {
  templateName: string;
  /** "$Latest", "$Default" or a version number as text. */
  version: string;
  userData: Uint8Array;
  /** How the rendered side is named in the patch header, e.g. "dockinit.yaml". */
  renderedLabel: string;
}

export interface UserDataSide {
  bytes: number;
  sha256: string;
  gzip: boolean;
}

export interface DiffOutcome {
  /** Byte-for-byte equal: exactly when `push` from this version would be a no-op. */
  equal: boolean;
  /** The decoded text is equal even though the bytes are not (e.g. one side gzipped). */
  sameText: boolean;
  templateName: string;
  templateId: string;
  region: string;
  version: number;
  current: UserDataSide;
  rendered: UserDataSide;
  /** Unified diff of the decoded texts; "" when they are equal. */
  patch: string;
}

export type DiffResult = { ok: true; outcome: DiffOutcome } | { ok: false; failure: AwsFailure };

// ── Client settings ───────────────────────────────────────────────────

export interface AwsFlags {
  region?: string;
  profile?: string;
}

export interface Ec2ClientSettings {
  /** Undefined: left to the SDK's own chain (the profile's `region`). */
  region?: string;
  /** Where the region came from, for messages. */
  regionSource: "--region" | "launch_template.region" | "AWS_REGION" | "sdk";
  profile?: string;
  endpoint?: string;
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  maxAttempts?: number;
}

/**
 * Resolve the client settings from flags, the environment the CLI was given
 * and dockinit.yaml. The region: --region, then dockinit.yaml's
 * `launch_template.region`, then AWS_REGION, then the profile's. The file
 * comes before the environment because it names where the template lives: a
 * shell's AWS_REGION left over from other work must not send `push --create`
 * to another region (the CLI warns when the two differ). The rest follows the
 * SDK's own order (flags, then AWS_PROFILE/AWS_ENDPOINT_URL_EC2/...). The SDK
 * would read process.env itself; resolving from `env`
 * explicitly makes the CLI honour the environment it is handed (in-process
 * tests hand it one), and is the same thing for the real binary.
 */
export function resolveEc2ClientSettings(flags: AwsFlags, env: Record<string, string | undefined>, configRegion?: string): Ec2ClientSettings {
  const settings: Ec2ClientSettings = { regionSource: "sdk" };
  const region = nonEmpty(flags.region) ?? nonEmpty(configRegion) ?? nonEmpty(env.AWS_REGION);
  if (region) {
    settings.region = region;
    settings.regionSource = nonEmpty(flags.region) ? "--region" : nonEmpty(configRegion) ? "launch_template.region" : "AWS_REGION";
  }
  const profile = nonEmpty(flags.profile) ?? nonEmpty(env.AWS_PROFILE);
  if (profile) settings.profile = profile;
  if (nonEmpty(env.AWS_IGNORE_CONFIGURED_ENDPOINT_URLS)?.toLowerCase() !== "true") {
    const endpoint = nonEmpty(env.AWS_ENDPOINT_URL_EC2) ?? nonEmpty(env.AWS_ENDPOINT_URL);
    if (endpoint) settings.endpoint = endpoint;
  }
  // The SDK's default chain prefers environment keys unless a profile is
  // named; mirror that so a profile given with --profile is really used.
  const accessKeyId = nonEmpty(env.AWS_ACCESS_KEY_ID);
  const secretAccessKey = nonEmpty(env.AWS_SECRET_ACCESS_KEY);
  if (!profile && accessKeyId && secretAccessKey) {
    const sessionToken = nonEmpty(env.AWS_SESSION_TOKEN);
    settings.credentials = { accessKeyId, secretAccessKey, ...(sessionToken ? { sessionToken } : {}) };
  }
  const attempts = Number(nonEmpty(env.AWS_MAX_ATTEMPTS));
  if (Number.isInteger(attempts) && attempts >= 1) settings.maxAttempts = attempts;
  return settings;
}

/** An environment value, trimmed; undefined when unset or blank. */
export const nonEmpty = (v: string | undefined): string | undefined => (v !== undefined && v.trim() !== "" ? v.trim() : undefined);

/** The SDK client configuration for these settings (EC2's and Auto Scaling's alike). */
export function clientConfig(settings: Ec2ClientSettings) {
  return {
    ...(settings.region ? { region: settings.region } : {}),
    ...(settings.profile ? { profile: settings.profile } : {}),
    ...(settings.endpoint ? { endpoint: settings.endpoint } : {}),
    ...(settings.credentials ? { credentials: settings.credentials } : {}),
    ...(settings.maxAttempts ? { maxAttempts: settings.maxAttempts } : {}),
  };
}

export function createEc2Client(settings: Ec2ClientSettings): EC2Client {
  return new EC2Client(clientConfig(settings));
}

// ── Pure helpers ──────────────────────────────────────────────────────

/** Gunzipping stops here: a gzip bomb in someone's template must not eat the memory. */
const MAX_DECODED_BYTES = 4 * 1024 * 1024;

export { sha256Hex };

/** LaunchTemplateData.UserData (base64) → the exact bytes. */
export function decodeUserData(base64: string | undefined): Buffer {
  return base64 ? Buffer.from(base64, "base64") : Buffer.alloc(0);
}

export const isGzip = (bytes: Uint8Array): boolean => bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;

/** User-data bytes → the text cloud-init reads (gunzipped when gzip). */
export function userDataText(bytes: Uint8Array): string {
  if (!isGzip(bytes)) return Buffer.from(bytes).toString("utf8");
  try {
    return gunzipSync(bytes, { maxOutputLength: MAX_DECODED_BYTES }).toString("utf8");
  } catch (err) {
    return `<gzip data that does not decompress: ${err instanceof Error ? err.message : String(err)}>\n`;
  }
}

// ── Error mapping ─────────────────────────────────────────────────────

export interface ErrorContext {
  operation: string;
  templateName: string;
  region: string;
  version?: string;
  endpoint?: string;
  /** The service in messages and its IAM prefix; EC2 ("ec2") unless said otherwise. */
  service?: { name: string; iam: string };
  /** What to run again, e.g. "push" (the default) or "rollout". */
  command?: string;
}

const NOT_FOUND = new Set([
  "InvalidLaunchTemplateName.NotFoundException",
  "InvalidLaunchTemplateId.NotFound",
  "InvalidLaunchTemplateId.Malformed",
  "InvalidLaunchTemplateName.MalformedException",
]);
const ACCESS_DENIED = new Set(["UnauthorizedOperation", "Client.UnauthorizedOperation", "AccessDenied", "AccessDeniedException"]);
const BAD_CREDENTIALS = new Set([
  "AuthFailure",
  "InvalidClientTokenId",
  "SignatureDoesNotMatch",
  "ExpiredToken",
  "ExpiredTokenException",
  "RequestExpired",
  "UnrecognizedClientException",
  "InvalidAccessKeyId",
]);
const THROTTLED = new Set(["RequestLimitExceeded", "Throttling", "ThrottlingException", "TooManyRequestsException", "RequestThrottled", "SlowDown"]);
const INVALID_REQUEST = new Set([
  "InvalidParameterValue",
  "InvalidParameter",
  "InvalidParameterCombination",
  "MissingParameter",
  "InvalidUserData.Malformed",
  "UnknownParameter",
  "ValidationError",
]);
const NETWORK = new Set(["ECONNREFUSED", "ECONNRESET", "ENOTFOUND", "EAI_AGAIN", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH", "EPIPE"]);

interface SdkErrorShape {
  name?: string;
  code?: string;
  message?: string;
  $fault?: "client" | "server";
  $metadata?: { attempts?: number; httpStatusCode?: number };
  $retryable?: { throttling?: boolean };
}

/** One line, no encoded authorization blobs, bounded length. */
function firstLine(text: string | undefined): string {
  const line = (text ?? "").split("\n")[0]?.replace(/\s*Encoded authorization failure message:.*$/i, "").trim() ?? "";
  return line.length > 300 ? `${line.slice(0, 297)}...` : line;
}

/** Map anything the SDK throws to one actionable line. Exported for the table tests. */
export function describeAwsError(err: unknown, ctx: ErrorContext): AwsFailure {
  const e: SdkErrorShape = typeof err === "object" && err !== null ? (err as SdkErrorShape) : { message: String(err) };
  const code = e.name && e.name !== "Error" ? e.name : (e.code ?? "Error");
  const detail = firstLine(e.message);
  const attempts = e.$metadata?.attempts ?? 1;
  const tried = attempts > 1 ? ` after ${attempts} attempts` : "";
  const lt = `launch template ${ctx.templateName}`;
  const fail = (kind: AwsFailure["kind"], message: string): AwsFailure => ({ kind, code, operation: ctx.operation, message });
  const service = ctx.service?.name ?? "EC2";
  const command = ctx.command ?? "push";

  if (NOT_FOUND.has(code)) {
    return fail("not-found", `${lt} not found in ${ctx.region} (${code}); check the name and region, or make it with \`dockinit push --create\``);
  }
  if (code === "InvalidLaunchTemplateId.VersionNotFound") {
    return fail("version-not-found", `${lt} in ${ctx.region} has no version ${ctx.version ?? "(unknown)"} (${code})`);
  }
  if (ACCESS_DENIED.has(code)) {
    return fail("access-denied", `access denied: this identity may not call ${ctx.service?.iam ?? "ec2"}:${ctx.operation} on ${ctx.service ? `${ctx.templateName}` : lt} in ${ctx.region} (${code}); grant it in IAM`);
  }
  if (BAD_CREDENTIALS.has(code)) {
    return fail("credentials", `AWS rejected the credentials (${code}): ${detail}`);
  }
  if (code === "CredentialsProviderError" || /could not load credentials/i.test(detail)) {
    return fail("credentials", `no usable AWS credentials (${detail}); set AWS_PROFILE (or --profile), or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY`);
  }
  if (/region is missing/i.test(detail)) {
    return fail("region", "no AWS region: pass --region, set launch_template.region in dockinit.yaml, or set AWS_REGION");
  }
  if (THROTTLED.has(code) || e.$retryable?.throttling) {
    return fail("throttled", `${service} is throttling requests (${code}); ${ctx.operation} still failed${tried || " after the SDK's retries"}; wait a minute and run again`);
  }
  if (code === "VersionLimitExceeded") {
    return fail("limit", `${lt} has reached its limit of versions (${code}); delete old versions (aws ec2 delete-launch-template-versions) and push again`);
  }
  if (code === "LaunchTemplateLimitExceeded") {
    return fail("limit", `this account has reached its limit of launch templates in ${ctx.region} (${code}); delete unused ones or ask for a higher quota`);
  }
  if (/LimitExceeded$/.test(code)) {
    return fail("limit", `an ${service} limit was reached (${code}): ${detail}`);
  }
  if (code === "InvalidLaunchTemplateName.AlreadyExistsException") {
    return fail("conflict", `${lt} already exists in ${ctx.region} (${code}); it was probably created meanwhile: run push again`);
  }
  if (code === "IdempotentParameterMismatch") {
    return fail("conflict", `EC2 already saw this push's ClientToken with different parameters (${code}); the template changed under us: run push again`);
  }
  if (INVALID_REQUEST.has(code)) {
    return fail("invalid-request", `${service} rejected ${ctx.operation} (${code}): ${detail}`);
  }
  const sysCode = e.code ?? "";
  if (NETWORK.has(sysCode) || NETWORK.has(code) || code === "TimeoutError") {
    const where = ctx.endpoint ? ` at ${ctx.endpoint}` : ` in ${ctx.region}`;
    return { kind: "network", code: sysCode || code, operation: ctx.operation, message: `cannot reach ${service}${where} (${sysCode || code})${tried}: ${detail}` };
  }
  if (e.$fault === "server") {
    return fail("server", `${service} had an internal error (${code})${tried}: ${detail}; run ${command} again later`);
  }
  return fail("other", `${ctx.operation} failed (${code}): ${detail}`);
}

// ── The EC2 conversation ──────────────────────────────────────────────

/** Thrown inside this module only; converted to a result at the API boundary. */
class Ec2CallFailed extends Error {
  constructor(readonly failure: AwsFailure) {
    super(failure.message);
  }
}

/** EC2's answer to DryRun when the caller would have been allowed. */
const isDryRunSuccess = (err: unknown): boolean => typeof err === "object" && err !== null && (err as { name?: string }).name === "DryRunOperation";
const isNotFound = (err: unknown): boolean => typeof err === "object" && err !== null && NOT_FOUND.has((err as { name?: string }).name ?? "");

class Conversation {
  constructor(
    readonly client: EC2Client,
    readonly templateName: string,
    readonly region: string,
    readonly endpoint: string | undefined,
  ) {}

  /** Send one request; any failure becomes an Ec2CallFailed with a mapped message. */
  async call<T>(operation: string, send: () => Promise<T>, version?: string): Promise<T> {
    try {
      return await send();
    } catch (err) {
      throw new Ec2CallFailed(describeAwsError(err, { operation, templateName: this.templateName, region: this.region, version, endpoint: this.endpoint }));
    }
  }

  /** A DryRun request: resolves when EC2 answers DryRunOperation ("would have succeeded"). */
  async dryRun(operation: string, send: () => Promise<unknown>): Promise<void> {
    try {
      await send();
    } catch (err) {
      if (isDryRunSuccess(err)) return;
      throw new Ec2CallFailed(describeAwsError(err, { operation, templateName: this.templateName, region: this.region, endpoint: this.endpoint }));
    }
    throw new Ec2CallFailed({
      kind: "other",
      code: "DryRunIgnored",
      operation,
      message: `EC2 answered a DryRun ${operation} without DryRunOperation; check what it changed in ${this.templateName}`,
    });
  }

  /** The template, or undefined when there is none by that name. */
  async findTemplate(): Promise<LaunchTemplate | undefined> {
    try {
      const out = await this.client.send(new DescribeLaunchTemplatesCommand({ LaunchTemplateNames: [this.templateName] }));
      return out.LaunchTemplates?.find((t) => t.LaunchTemplateName === this.templateName);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw new Ec2CallFailed(describeAwsError(err, { operation: "DescribeLaunchTemplates", templateName: this.templateName, region: this.region, endpoint: this.endpoint }));
    }
  }

  async version(selector: { LaunchTemplateId: string } | { LaunchTemplateName: string }, version: string): Promise<LaunchTemplateVersion> {
    const out = await this.call(
      "DescribeLaunchTemplateVersions",
      () => this.client.send(new DescribeLaunchTemplateVersionsCommand({ ...selector, Versions: [version] })),
      version,
    );
    const found = out.LaunchTemplateVersions?.[0];
    if (!found || found.VersionNumber === undefined || !found.LaunchTemplateId) {
      throw new Ec2CallFailed({
        kind: "version-not-found",
        code: "EmptyResponse",
        operation: "DescribeLaunchTemplateVersions",
        message: `launch template ${this.templateName} in ${this.region} returned no version ${version}`,
      });
    }
    return found;
  }
}

/** The region the client will use; a missing region is a failure like any other. */
async function clientRegion(client: EC2Client, templateName: string): Promise<string> {
  try {
    return await client.config.region();
  } catch (err) {
    throw new Ec2CallFailed(describeAwsError(err, { operation: "ResolveRegion", templateName, region: "(no region)" }));
  }
}

async function clientEndpoint(client: EC2Client): Promise<string | undefined> {
  try {
    const ep = await client.config.endpoint?.();
    if (!ep) return undefined;
    return `${ep.protocol}//${ep.hostname}${ep.port ? `:${ep.port}` : ""}${ep.path === "/" ? "" : ep.path}`;
  } catch {
    return undefined;
  }
}

async function openConversation(client: EC2Client, templateName: string): Promise<Conversation> {
  const region = await clientRegion(client, templateName);
  return new Conversation(client, templateName, region, await clientEndpoint(client));
}

// ── push: the execution ───────────────────────────────────────────────

/**
 * Push the user-data as a new version of the template:
 *
 * 1. DescribeLaunchTemplates: id, default and latest version (or: missing).
 * 2. DescribeLaunchTemplateVersions for the source version: its number and
 *    its UserData. Identical bytes → nothing is created.
 * 3. CreateLaunchTemplateVersion with SourceVersion = the resolved number (so
 *    the version we compared is the version we copy, even if $Latest moves
 *    meanwhile) and LaunchTemplateData = { UserData } only, so everything else
 *    (AMI, instance type, network interfaces, tags...) is inherited.
 * 4. ModifyLaunchTemplate DefaultVersion, only when asked to.
 *
 * Steps 1-2 gather PushFacts, planPush decides, the rest carries the plan out.
 */
export async function pushUserData(client: EC2Client, input: PushInput): Promise<PushResult> {
  let completed: PushOutcome | undefined;
  try {
    const talk = await openConversation(client, input.templateName);
    const sha256 = sha256Hex(input.userData);
    const facts = await gatherPushFacts(talk, input.sourceVersion);
    const plan = planPush(input, facts, sha256);
    const userDataBase64 = Buffer.from(input.userData).toString("base64");
    const base = { templateName: input.templateName, region: talk.region, bytes: input.userData.length, sha256, dryRun: input.dryRun };

    switch (plan.step) {
      case "refuse-missing-template":
        return {
          ok: false,
          failure: {
            kind: "not-found",
            code: "InvalidLaunchTemplateName.NotFoundException",
            operation: "DescribeLaunchTemplates",
            message: `launch template ${input.templateName} not found in ${talk.region}; check the name and region, or pass --create to make it with this user-data as version 1`,
          },
        };
      case "create-template": {
        const request = { LaunchTemplateName: input.templateName, VersionDescription: plan.description, ClientToken: plan.clientToken, LaunchTemplateData: { UserData: userDataBase64 } };
        if (input.dryRun) {
          await talk.dryRun("CreateLaunchTemplate", () => client.send(new CreateLaunchTemplateCommand({ ...request, DryRun: true })));
          return { ok: true, outcome: { ...base, action: "would-create-template", version: 1, defaultVersion: 1, clientToken: plan.clientToken } };
        }
        const out = await talk.call("CreateLaunchTemplate", () => client.send(new CreateLaunchTemplateCommand(request)));
        const created = out.LaunchTemplate;
        return {
          ok: true,
          outcome: {
            ...base,
            action: "created-template",
            templateId: created?.LaunchTemplateId,
            version: created?.LatestVersionNumber ?? 1,
            defaultVersion: created?.DefaultVersionNumber ?? 1,
            clientToken: plan.clientToken,
          },
        };
      }
      case "unchanged": {
        const withTemplate = { ...base, templateId: plan.templateId, sourceVersion: plan.version, previousDefaultVersion: plan.defaultBefore };
        completed = { ...withTemplate, action: "unchanged", version: plan.version, defaultVersion: plan.defaultBefore };
        const defaultVersion = await moveDefault(talk, plan, plan.version, input.dryRun);
        return { ok: true, outcome: { ...completed, defaultVersion } };
      }
      case "create-version": {
        const withTemplate = { ...base, templateId: plan.templateId, sourceVersion: plan.sourceVersion, previousDefaultVersion: plan.defaultBefore };
        const request = {
          LaunchTemplateId: plan.templateId,
          SourceVersion: String(plan.sourceVersion),
          VersionDescription: plan.description,
          ClientToken: plan.clientToken,
          LaunchTemplateData: { UserData: userDataBase64 },
        };
        if (input.dryRun) {
          await talk.dryRun("CreateLaunchTemplateVersion", () => client.send(new CreateLaunchTemplateVersionCommand({ ...request, DryRun: true })));
          const defaultVersion = await moveDefault(talk, plan, plan.nextVersion, true);
          return { ok: true, outcome: { ...withTemplate, action: "would-create-version", version: plan.nextVersion, defaultVersion, clientToken: plan.clientToken } };
        }
        const out = await talk.call("CreateLaunchTemplateVersion", () => client.send(new CreateLaunchTemplateVersionCommand(request)));
        const version = out.LaunchTemplateVersion?.VersionNumber;
        if (version === undefined) {
          return {
            ok: false,
            failure: { kind: "other", code: "EmptyResponse", operation: "CreateLaunchTemplateVersion", message: `EC2 did not say which version of ${input.templateName} it created` },
          };
        }
        completed = { ...withTemplate, action: "created-version", version, defaultVersion: plan.defaultBefore, clientToken: plan.clientToken };
        const defaultVersion = await moveDefault(talk, plan, version, false);
        return { ok: true, outcome: { ...completed, defaultVersion } };
      }
    }
  } catch (err) {
    if (!(err instanceof Ec2CallFailed)) throw err;
    if (!completed) return { ok: false, failure: err.failure };
    const done =
      completed.action === "unchanged"
        ? `version ${completed.version} of ${completed.templateName} already has this user-data`
        : `created version ${completed.version} of ${completed.templateName}`;
    return {
      ok: false,
      failure: { ...err.failure, message: `${done}, but could not make it the default: ${err.failure.message}` },
      completed,
    };
  }
}

/** DescribeLaunchTemplates, then (when it exists) the source version: everything planPush needs. */
async function gatherPushFacts(talk: Conversation, sourceVersion: string): Promise<PushFacts> {
  const template = await talk.findTemplate();
  if (!template) return {};
  const id = template.LaunchTemplateId ?? "";
  const defaultVersion = template.DefaultVersionNumber ?? 1;
  const source = await talk.version({ LaunchTemplateId: id }, sourceVersion);
  return {
    template: { id, defaultVersion, latestVersion: template.LatestVersionNumber ?? defaultVersion },
    source: { version: source.VersionNumber ?? 0, userData: decodeUserData(source.LaunchTemplateData?.UserData) },
  };
}

/** ModifyLaunchTemplate when the plan says so; returns the default version after it. */
async function moveDefault(talk: Conversation, plan: { templateId: string; defaultBefore: number; moveDefault: boolean }, version: number, dryRun: boolean): Promise<number> {
  if (!plan.moveDefault || version === plan.defaultBefore) return plan.defaultBefore;
  const client = talk.client;
  if (dryRun) {
    // The version a dry run talks about does not exist yet; EC2's DryRun
    // is a permission check, so ask with the current default instead.
    await talk.dryRun("ModifyLaunchTemplate", () =>
      client.send(new ModifyLaunchTemplateCommand({ LaunchTemplateId: plan.templateId, DefaultVersion: String(plan.defaultBefore), DryRun: true })),
    );
    return version;
  }
  const out = await talk.call("ModifyLaunchTemplate", () => client.send(new ModifyLaunchTemplateCommand({ LaunchTemplateId: plan.templateId, DefaultVersion: String(version) })));
  return out.LaunchTemplate?.DefaultVersionNumber ?? version;
}

/** Compare a template version's user-data with the rendered bytes. */
export async function diffTemplate(client: EC2Client, input: DiffInput): Promise<DiffResult> {
  try {
    const talk = await openConversation(client, input.templateName);
    const version = await talk.version({ LaunchTemplateName: input.templateName }, input.version);
    const current = decodeUserData(version.LaunchTemplateData?.UserData);
    const rendered = Buffer.from(input.userData);
    const currentText = userDataText(current);
    const renderedText = userDataText(rendered);
    const versionNumber = version.VersionNumber ?? 0;
    const patch =
      currentText === renderedText
        ? ""
        : createTwoFilesPatch(`${input.templateName} version ${versionNumber}`, `${input.renderedLabel} (rendered)`, currentText, renderedText, undefined, undefined, {
            context: 3,
            headerOptions: FILE_HEADERS_ONLY,
          });
    const side = (b: Buffer): UserDataSide => ({ bytes: b.length, sha256: sha256Hex(b), gzip: isGzip(b) });
    return {
      ok: true,
      outcome: {
        equal: current.equals(rendered),
        sameText: currentText === renderedText,
        templateName: input.templateName,
        templateId: version.LaunchTemplateId ?? "",
        region: talk.region,
        version: versionNumber,
        current: side(current),
        rendered: side(rendered),
        patch,
      },
    };
  } catch (err) {
    if (err instanceof Ec2CallFailed) return { ok: false, failure: err.failure };
    throw err;
  }
}
