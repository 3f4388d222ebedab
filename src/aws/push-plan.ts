// The push decision: the bundle, the flags and what EC2 said in; what to do
// out. Pure, and free of the SDK, so its decision table is a plain unit test
// (test/unit/aws-push-plan.test.ts); launch-template.ts gathers the facts and
// carries the plan out.
import { sha256 as sha256Hex } from "../hash.js";

/** What to upload: the bundle's exact user-data bytes and where they go. */
export interface PushInput {
  templateName: string;
  /** The version the new one is based on: "$Latest", "$Default" or a number as text. */
  sourceVersion: string;
  /** Exact bytes EC2 should hand the instance (before the API's base64). */
  userData: Uint8Array;
  /** The bundle's name (`name:` in dockinit.yaml), for the version description. */
  bundleName: string;
  /** Make the version carrying this user-data the template's default. */
  setDefault: boolean;
  /** Ask EC2 for a permission check (DryRun) instead of changing anything. */
  dryRun: boolean;
  /** Create the template (with this user-data as version 1) when it does not exist. */
  create: boolean;
}

/** EC2 caps VersionDescription at 255 characters. */
const MAX_DESCRIPTION = 255;
/** EC2 caps ClientToken at 128 ASCII characters; 64 keeps it readable in CloudTrail. */
const CLIENT_TOKEN_LENGTH = 64;
const CLIENT_TOKEN_PREFIX = "dockinit-";

/**
 * The ClientToken for a new version: the same template, source version and
 * user-data always give the same token, so a push retried after a lost
 * response (or re-run by CI) is answered with the version EC2 already made
 * instead of creating a second one. The SDK's own token is random per call.
 */
export function versionClientToken(templateId: string, sourceVersion: number, userDataSha256: string): string {
  return token(`version\0${templateId}\0${sourceVersion}\0${userDataSha256}`);
}

/** The ClientToken for CreateLaunchTemplate (no id exists yet: keyed by name). */
export function templateClientToken(templateName: string, userDataSha256: string): string {
  return token(`template\0${templateName}\0${userDataSha256}`);
}

function token(material: string): string {
  return `${CLIENT_TOKEN_PREFIX}${sha256Hex(material)}`.slice(0, CLIENT_TOKEN_LENGTH);
}

/** "dockinit build-runner sha256:<hex>": what `aws ec2 describe-launch-template-versions` shows. */
export function versionDescription(bundleName: string, userDataSha256: string): string {
  const suffix = ` sha256:${userDataSha256}`;
  return `dockinit ${bundleName}`.slice(0, MAX_DESCRIPTION - suffix.length) + suffix;
}

// ── push: the decision (pure) ─────────────────────────────────────────

/** What EC2 said before anything changes: the inputs of the push decision besides PushInput. */
export interface PushFacts {
  /** Undefined: there is no template by that name. */
  template?: { id: string; defaultVersion: number; latestVersion: number };
  /** The source version resolved to its number, with its user-data; looked up only when the template exists. */
  source?: { version: number; userData: Uint8Array };
}

/**
 * What push will do, decided from the input and EC2's answers alone. Each
 * step names the one request that changes something (or none), and whether
 * ModifyLaunchTemplate follows.
 */
export type PushPlan =
  /** No template and no --create: nothing is sent. */
  | { step: "refuse-missing-template" }
  /** CreateLaunchTemplate with the user-data as version 1 (DryRun when dryRun). */
  | { step: "create-template"; clientToken: string; description: string }
  /** The source version already carries these bytes: nothing is created. */
  | { step: "unchanged"; templateId: string; version: number; defaultBefore: number; moveDefault: boolean }
  /** CreateLaunchTemplateVersion from the source version's number, then maybe ModifyLaunchTemplate. */
  | {
      step: "create-version";
      templateId: string;
      sourceVersion: number;
      defaultBefore: number;
      /** The number a dry run reports: EC2 gives the next version latest + 1. */
      nextVersion: number;
      clientToken: string;
      description: string;
      moveDefault: boolean;
    };

/** The push decision table; pure, so it is tested without an SDK (test/unit/aws-push-plan.test.ts). */
export function planPush(input: PushInput, facts: PushFacts, sha256: string = sha256Hex(input.userData)): PushPlan {
  const description = versionDescription(input.bundleName, sha256);
  const template = facts.template;
  if (!template) {
    if (!input.create) return { step: "refuse-missing-template" };
    return { step: "create-template", clientToken: templateClientToken(input.templateName, sha256), description };
  }
  const source = facts.source;
  if (!source) throw new Error("planPush: an existing template needs its source version");
  if (Buffer.from(source.userData).equals(input.userData)) {
    // With --set-default the version that already carries this user-data
    // becomes the default: that also repairs a push whose ModifyLaunchTemplate
    // step failed after the version was made.
    return { step: "unchanged", templateId: template.id, version: source.version, defaultBefore: template.defaultVersion, moveDefault: input.setDefault && source.version !== template.defaultVersion };
  }
  return {
    step: "create-version",
    templateId: template.id,
    sourceVersion: source.version,
    defaultBefore: template.defaultVersion,
    nextVersion: template.latestVersion + 1,
    clientToken: versionClientToken(template.id, source.version, sha256),
    description,
    moveDefault: input.setDefault,
  };
}

