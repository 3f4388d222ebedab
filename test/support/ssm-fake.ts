// A small stand-in for the four SSM actions `dockinit verify` uses, which
// moto does not answer the way we need (its SendCommand runs nothing and its
// invocations are Success at once). It speaks SSM's JSON 1.1 protocol
// (X-Amz-Target: AmazonSSM.<Action>, errors as {"__type", "message"}) and
// behaves as SSM does where verify depends on it:
// - DescribeInstanceInformation: only registered instances, with their
//   PingStatus; the InstanceIds filter; MaxResults 5–50 and NextToken paging.
// - SendCommand: at most 50 InstanceIds (ValidationException beyond), a known
//   document; AWS-RunShellScript takes its `commands` parameter and a
//   document of the user's takes none. An instance whose agent is not online
//   gets DeliveryTimedOut.
// - An invocation does not exist until the first ListCommandInvocations after
//   SendCommand (GetCommandInvocation: InvocationDoesNotExist; the list:
//   empty), then moves Pending → InProgress → Success/Failed, one step per
//   look (ListCommandInvocations of its command or GetCommandInvocation).
// - Output limits: the plugin Output in ListCommandInvocations is cut at 2,500
//   characters, StandardOutputContent/StandardErrorContent at 24,000.
// - `throttleEvery`: every Nth call of the named actions fails with
//   ThrottlingException (proves back-off end to end).
// Each instance answers what the test says (its stdout, stderr and exit code)
// when the command the document runs is the status; any other command fails
// there with exit 127, as a shell would.
import { type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { startLocalServer, stopLocalServer } from "./local-server.js";

export type FakeHost =
  /** The agent runs the command: this is what it prints and how it exits. */
  | { kind: "answers"; stdout: string; stderr?: string; exitCode?: number }
  /** Registered with SSM, but its agent is not online. */
  | { kind: "offline"; pingStatus: "ConnectionLost" | "Inactive" }
  /** Online when asked, gone before the command reaches it. */
  | { kind: "undelivered"; statusDetails: "DeliveryTimedOut" | "Undeliverable" | "Terminated" };

interface Invocation {
  commandId: string;
  instanceId: string;
  /** Looks so far: 0 = not yet existing. */
  looks: number;
  /** The shell lines the document runs. */
  commands: string[];
}

export interface SentCommand {
  commandId: string;
  instanceIds: string[];
  documentName: string;
  parameters?: Record<string, string[]>;
  timeoutSeconds?: number;
  maxErrors?: string;
}

const PLUGIN_OUTPUT_LIMIT = 2500;
const CONTENT_LIMIT = 24_000;
/** What a host's shell runs as the status: anything else is "command not found" there. */
const STATUS = /^(\/usr\/local\/sbin\/)?dockinit-firewall status --json$/;

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

class Fail extends Error {
  constructor(
    readonly type: string,
    message: string,
  ) {
    super(message);
  }
}

export class SsmFake {
  /** Managed instances and what each does; an instance not here has no agent (not managed). */
  readonly hosts = new Map<string, FakeHost>();
  readonly sent: SentCommand[] = [];
  /** Command documents of the account (name → its runCommand lines); AWS-RunShellScript is always there and takes `commands`. */
  readonly documents = new Map<string, string[]>();
  /** Every action that reached the fake, in order. */
  readonly actions: string[] = [];
  throttleEvery: { actions: Set<string>; n: number } | undefined;
  /** How many calls were answered ThrottlingException. */
  throttled = 0;
  private readonly invocations = new Map<string, Invocation>();
  private server?: Server;
  private counter = 0;
  private calls = 0;

  async start(): Promise<string> {
    const { server, url } = await startLocalServer((req, res) => this.handle(req, res));
    this.server = server;
    return url;
  }

  async stop(): Promise<void> {
    await stopLocalServer(this.server);
  }

  reset(): void {
    this.hosts.clear();
    this.documents.clear();
    this.sent.length = 0;
    this.actions.length = 0;
    this.invocations.clear();
    this.throttleEvery = undefined;
    this.calls = 0;
    this.throttled = 0;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req);
    const action = String(req.headers["x-amz-target"] ?? "").replace(/^AmazonSSM\./, "");
    this.actions.push(action);
    const reply = (status: number, value: unknown) => {
      res.writeHead(status, { "content-type": "application/x-amz-json-1.1" });
      res.end(JSON.stringify(value));
    };
    try {
      if (this.throttleEvery?.actions.has(action) && ++this.calls % this.throttleEvery.n === 0) {
        this.throttled += 1;
        throw new Fail("ThrottlingException", "Rate exceeded");
      }
      const input = JSON.parse(body || "{}") as Record<string, unknown>;
      reply(200, this.answer(action, input));
    } catch (err) {
      if (!(err instanceof Fail)) throw err;
      reply(400, { __type: err.type, message: err.message });
    }
  }

  private answer(action: string, input: Record<string, unknown>): unknown {
    switch (action) {
      case "DescribeInstanceInformation":
        return this.describeInstanceInformation(input);
      case "SendCommand":
        return this.sendCommand(input);
      case "ListCommandInvocations":
        return this.listCommandInvocations(input);
      case "GetCommandInvocation":
        return this.getCommandInvocation(input);
      default:
        throw new Fail("InvalidAction", `the SSM fake does not answer ${action}`);
    }
  }

  private page<T>(items: T[], input: Record<string, unknown>, max: number): { items: T[]; next?: string } {
    const wanted = input.MaxResults === undefined ? max : Number(input.MaxResults);
    if (!Number.isInteger(wanted) || wanted < 1 || wanted > max) throw new Fail("ValidationException", `MaxResults must be between 1 and ${max}`);
    const start = input.NextToken ? Number(Buffer.from(String(input.NextToken), "base64").toString("utf8")) : 0;
    const slice = items.slice(start, start + wanted);
    const end = start + slice.length;
    return { items: slice, ...(end < items.length ? { next: Buffer.from(String(end)).toString("base64") } : {}) };
  }

  private describeInstanceInformation(input: Record<string, unknown>) {
    const filters = (input.Filters ?? []) as { Key: string; Values: string[] }[];
    const ids = filters.find((f) => f.Key === "InstanceIds")?.Values;
    if (ids && ids.length > 50) throw new Fail("ValidationException", "InstanceIds filter takes at most 50 values");
    const all = [...this.hosts.entries()].filter(([id]) => !ids || ids.includes(id));
    const p = this.page(all, input, 50);
    if (input.MaxResults !== undefined && Number(input.MaxResults) < 5) throw new Fail("ValidationException", "MaxResults must be at least 5");
    return {
      InstanceInformationList: p.items.map(([id, h]) => ({ InstanceId: id, PingStatus: h.kind === "offline" ? h.pingStatus : "Online", PlatformType: "Linux", ResourceType: "EC2Instance" })),
      ...(p.next ? { NextToken: p.next } : {}),
    };
  }

  private sendCommand(input: Record<string, unknown>) {
    const ids = (input.InstanceIds ?? []) as string[];
    if (ids.length === 0 || ids.length > 50) throw new Fail("ValidationException", `1 validation error detected: Value at 'instanceIds' failed to satisfy constraint: Member must have length less than or equal to 50`);
    const documentName = String(input.DocumentName ?? "");
    if (documentName !== "AWS-RunShellScript" && !this.documents.has(documentName)) throw new Fail("InvalidDocument", `Document ${documentName} does not exist in your account`);
    const parameters = input.Parameters as Record<string, string[]> | undefined;
    if (documentName === "AWS-RunShellScript" && !parameters?.commands?.length) throw new Fail("InvalidParameters", "commands is required");
    if (documentName !== "AWS-RunShellScript" && parameters && Object.keys(parameters).length > 0) throw new Fail("InvalidParameters", `document ${documentName} takes no parameters`);
    const commandId = `00000000-0000-4000-8000-${String(++this.counter).padStart(12, "0")}`;
    this.sent.push({ commandId, instanceIds: ids, documentName, ...(parameters ? { parameters } : {}), timeoutSeconds: input.TimeoutSeconds as number | undefined, maxErrors: input.MaxErrors as string | undefined });
    const commands = documentName === "AWS-RunShellScript" ? parameters!.commands! : this.documents.get(documentName)!;
    for (const id of ids) this.invocations.set(`${commandId}/${id}`, { commandId, instanceId: id, looks: 0, commands });
    return { Command: { CommandId: commandId, DocumentName: documentName, InstanceIds: ids, Status: "Pending", TargetCount: ids.length } };
  }

  /** Where an invocation is after this many looks: Pending, InProgress, then its end. */
  private state(inv: Invocation) {
    const host = this.hosts.get(inv.instanceId);
    if (!host || host.kind === "offline") return { Status: "TimedOut", StatusDetails: "DeliveryTimedOut", ResponseCode: -1, stdout: "", stderr: "" };
    if (inv.looks <= 1) return { Status: "Pending", StatusDetails: "Pending", ResponseCode: -1, stdout: "", stderr: "" };
    if (inv.looks === 2) return { Status: "InProgress", StatusDetails: "InProgress", ResponseCode: -1, stdout: "", stderr: "" };
    if (host.kind === "undelivered") return { Status: host.statusDetails === "DeliveryTimedOut" ? "TimedOut" : "Failed", StatusDetails: host.statusDetails, ResponseCode: -1, stdout: "", stderr: "" };
    // The host answers as told only when what runs is the status; anything else is not there.
    if (inv.commands.length !== 1 || !STATUS.test(inv.commands[0]!)) {
      const first = (inv.commands[0] ?? "").split(" ")[0];
      return { Status: "Failed", StatusDetails: "Failed", ResponseCode: 127, stdout: "", stderr: `_script.sh: line 1: ${first}: command not found\n` };
    }
    const code = host.exitCode ?? 0;
    return { Status: code === 0 ? "Success" : "Failed", StatusDetails: code === 0 ? "Success" : "Failed", ResponseCode: code, stdout: host.stdout, stderr: host.stderr ?? "" };
  }

  private listCommandInvocations(input: Record<string, unknown>) {
    const commandId = String(input.CommandId ?? "");
    const all = [...this.invocations.values()].filter((i) => i.commandId === commandId);
    // The first look makes them exist (and shows none); every look (its first page) moves each a step.
    const existing = all.filter((i) => i.looks > 0);
    if (!input.NextToken) for (const i of all) i.looks += 1;
    const p = this.page(existing, input, 50);
    return {
      CommandInvocations: p.items.map((inv) => {
        const s = this.state(inv);
        const out = s.stdout + (s.stderr ? `\n----------ERROR-------\n${s.stderr}` : "");
        return {
          CommandId: inv.commandId,
          InstanceId: inv.instanceId,
          DocumentName: "AWS-RunShellScript",
          Status: s.Status,
          StatusDetails: s.StatusDetails,
          ...(input.Details ? { CommandPlugins: [{ Name: "aws:runShellScript", Status: s.Status, StatusDetails: s.StatusDetails, ResponseCode: s.ResponseCode, Output: out.length > PLUGIN_OUTPUT_LIMIT ? `${out.slice(0, PLUGIN_OUTPUT_LIMIT)}\n---Output truncated---` : out }] } : {}),
        };
      }),
      ...(p.next ? { NextToken: p.next } : {}),
    };
  }

  private getCommandInvocation(input: Record<string, unknown>) {
    const inv = this.invocations.get(`${String(input.CommandId)}/${String(input.InstanceId)}`);
    if (!inv || inv.looks === 0) throw new Fail("InvocationDoesNotExist", "An error occurred (InvocationDoesNotExist)");
    inv.looks += 1;
    const s = this.state(inv);
    return {
      CommandId: inv.commandId,
      InstanceId: inv.instanceId,
      Status: s.Status,
      StatusDetails: s.StatusDetails,
      ResponseCode: s.ResponseCode,
      StandardOutputContent: s.stdout.slice(0, CONTENT_LIMIT),
      StandardErrorContent: s.stderr.slice(0, CONTENT_LIMIT),
    };
  }
}
