// A small stand-in for EC2 Auto Scaling's instance-refresh actions, in front
// of moto. moto 5.2.5 answers DescribeAutoScalingGroups (and the rest of the
// group API) but returns HTTP 500 NotImplementedError for StartInstanceRefresh,
// DescribeInstanceRefreshes, CancelInstanceRefresh and RollbackInstanceRefresh.
// This server answers those four itself, the way the Auto Scaling Query API
// does (XML, error codes), and forwards every other request to moto unchanged.
//
// A refresh follows a script: one state per DescribeInstanceRefreshes poll
// that names it (the last state repeats), so a test says "Pending, then 50%,
// then Successful" and the CLI sees exactly that. When a refresh ends
// Successful the fake does what AWS does: it sets the group's launch template
// to the desired configuration (UpdateAutoScalingGroup on moto).
import { type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { startLocalServer, stopLocalServer } from "./local-server.js";

export interface RefreshState {
  status: string;
  percentage?: number;
  instancesToUpdate?: number;
  reason?: string;
}

export interface FakeRefresh {
  id: string;
  group: string;
  /** The StartInstanceRefresh request as sent (form fields). */
  request: URLSearchParams;
  script: RefreshState[];
  /** DescribeInstanceRefreshes polls that named this refresh so far. */
  polls: number;
  /** Set by CancelInstanceRefresh / RollbackInstanceRefresh. */
  override?: RefreshState;
  /** The start request's Authorization header (its credential scope names the region). */
  authorization: string;
}

const NS = 'xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/"';
const OWN = new Set(["StartInstanceRefresh", "DescribeInstanceRefreshes", "CancelInstanceRefresh", "RollbackInstanceRefresh"]);
const ACTIVE = new Set(["Pending", "InProgress", "Baking", "Cancelling", "RollbackInProgress"]);
const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

export class InstanceRefreshFake {
  /** What the next refresh of a group does; groups without a script succeed on the second poll. */
  readonly scripts = new Map<string, RefreshState[]>();
  /** StartInstanceRefresh of these groups fails with this error. */
  readonly startErrors = new Map<string, { code: string; message: string }>();
  readonly refreshes: FakeRefresh[] = [];
  /** Every Auto Scaling action that reached the fake, answered here or forwarded. */
  readonly actions: string[] = [];
  /** Called after each poll that moves a refresh, with its state then: a test's stand-in for what AWS does meanwhile (new instances). */
  onPoll?: (r: FakeRefresh, state: RefreshState) => Promise<void>;
  private server?: Server;
  private counter = 0;

  constructor(private readonly upstream: string) {}

  async start(): Promise<string> {
    const { server, url } = await startLocalServer((req, res) => this.handle(req, res));
    this.server = server;
    return url;
  }

  async stop(): Promise<void> {
    await stopLocalServer(this.server);
  }

  reset(): void {
    this.scripts.clear();
    this.startErrors.clear();
    this.refreshes.length = 0;
    this.actions.length = 0;
    this.onPoll = undefined;
  }

  /** A refresh someone else started earlier, still in `status`. */
  existing(group: string, status: string): FakeRefresh {
    const r: FakeRefresh = { id: this.nextId(), group, request: new URLSearchParams(), script: [{ status, percentage: 10 }], polls: 0, authorization: "" };
    this.refreshes.push(r);
    return r;
  }

  /** What DescribeInstanceRefreshes says about `r` now. */
  state(r: FakeRefresh): RefreshState {
    return r.override ?? r.script[Math.min(Math.max(r.polls - 1, 0), r.script.length - 1)]!;
  }

  private nextId(): string {
    this.counter += 1;
    return `0000000${this.counter}-fake-refresh-id`.slice(-28);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req);
    const params = new URLSearchParams(body.toString("utf8"));
    const action = params.get("Action") ?? "";
    this.actions.push(action);
    if (!OWN.has(action)) return this.forward(req, res, body);
    const reply = (xml: string, status = 200) => {
      res.writeHead(status, { "content-type": "text/xml" });
      res.end(xml);
    };
    const error = (code: string, message: string) =>
      reply(`<ErrorResponse ${NS}><Error><Type>Sender</Type><Code>${code}</Code><Message>${esc(message)}</Message></Error><RequestId>fake</RequestId></ErrorResponse>`, 400);
    const ok = (inner: string) => reply(`<${action}Response ${NS}><${action}Result>${inner}</${action}Result><ResponseMetadata><RequestId>fake</RequestId></ResponseMetadata></${action}Response>`);
    const group = params.get("AutoScalingGroupName") ?? "";
    const active = () => this.refreshes.find((r) => r.group === group && ACTIVE.has(this.state(r).status));

    switch (action) {
      case "StartInstanceRefresh": {
        const failure = this.startErrors.get(group);
        if (failure) return error(failure.code, failure.message);
        const running = active();
        if (running) return error("InstanceRefreshInProgress", `An Instance Refresh is already in progress and blocks the execution of this Instance Refresh.`);
        const r: FakeRefresh = {
          id: this.nextId(),
          group,
          request: params,
          script: this.scripts.get(group) ?? [{ status: "Pending" }, { status: "Successful", percentage: 100, instancesToUpdate: 0 }],
          polls: 0,
          authorization: String(req.headers.authorization ?? ""),
        };
        this.refreshes.push(r);
        return ok(`<InstanceRefreshId>${r.id}</InstanceRefreshId>`);
      }
      case "DescribeInstanceRefreshes": {
        const ids = [...params.entries()].filter(([k]) => k.startsWith("InstanceRefreshIds.member.")).map(([, v]) => v);
        const mine = this.refreshes.filter((r) => r.group === group && (ids.length === 0 || ids.includes(r.id))).reverse();
        const members: string[] = [];
        for (const r of mine) {
          if (ids.length > 0) {
            const before = this.state(r).status;
            r.polls += 1;
            if (before !== "Successful" && this.state(r).status === "Successful") await this.applyDesired(r);
            await this.onPoll?.(r, this.state(r));
          }
          const s = this.state(r);
          members.push(
            `<member><InstanceRefreshId>${r.id}</InstanceRefreshId><AutoScalingGroupName>${esc(r.group)}</AutoScalingGroupName><Status>${s.status}</Status>` +
              (s.reason ? `<StatusReason>${esc(s.reason)}</StatusReason>` : "") +
              (s.percentage !== undefined ? `<PercentageComplete>${s.percentage}</PercentageComplete>` : "") +
              (s.instancesToUpdate !== undefined ? `<InstancesToUpdate>${s.instancesToUpdate}</InstancesToUpdate>` : "") +
              `</member>`,
          );
        }
        return ok(`<InstanceRefreshes>${members.join("")}</InstanceRefreshes>`);
      }
      case "CancelInstanceRefresh":
      case "RollbackInstanceRefresh": {
        const running = active();
        if (!running) return error("ActiveInstanceRefreshNotFound", "No in progress or pending Instance Refresh found for Auto Scaling group " + group);
        running.override =
          action === "CancelInstanceRefresh" ? { status: "Cancelled", reason: "cancelled by request" } : { status: "RollbackSuccessful", reason: "rolled back by request" };
        return ok(`<InstanceRefreshId>${running.id}</InstanceRefreshId>`);
      }
    }
  }

  /** What AWS does after a successful refresh with a desired configuration: the group now uses it. */
  private async applyDesired(r: FakeRefresh): Promise<void> {
    const update = new URLSearchParams({ Action: "UpdateAutoScalingGroup", Version: "2011-01-01", AutoScalingGroupName: r.group });
    let any = false;
    for (const [k, v] of r.request.entries()) {
      if (k.startsWith("DesiredConfiguration.")) {
        update.set(k.slice("DesiredConfiguration.".length), v);
        any = true;
      }
    }
    if (!any) return;
    // moto routes a request to a service by the credential scope of its Authorization header (it checks no signature).
    const region = /\/([a-z0-9-]+)\/autoscaling\/aws4_request/.exec(r.authorization)?.[1] ?? "us-east-1";
    const headers = {
      "content-type": "application/x-www-form-urlencoded",
      authorization: `AWS4-HMAC-SHA256 Credential=testing/20260101/${region}/autoscaling/aws4_request, SignedHeaders=host, Signature=0`,
    };
    const res = await fetch(this.upstream, { method: "POST", headers, body: update.toString() });
    if (!res.ok) throw new Error(`moto refused UpdateAutoScalingGroup: ${res.status} ${await res.text()}`);
  }

  private async forward(req: IncomingMessage, res: ServerResponse, body: Buffer): Promise<void> {
    const headers = new Headers();
    for (const [k, v] of Object.entries(req.headers)) {
      if (v === undefined || ["host", "content-length", "connection"].includes(k)) continue;
      headers.set(k, Array.isArray(v) ? v.join(", ") : v);
    }
    const upstream = await fetch(new URL(req.url ?? "/", this.upstream), { method: req.method, headers, body: req.method === "GET" || req.method === "HEAD" ? undefined : new Uint8Array(body) });
    const out = Buffer.from(await upstream.arrayBuffer());
    res.writeHead(upstream.status, { "content-type": upstream.headers.get("content-type") ?? "text/xml" });
    res.end(out);
  }
}
