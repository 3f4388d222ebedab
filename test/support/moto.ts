// moto's EC2 server for the launch-template system test.
//
// moto runs from a Python venv that .ci/run creates (.cache/moto-venv, or the
// interpreter named by DOCKINIT_MOTO_PYTHON); tests never build venvs, that is
// too slow. Locally a missing venv skips the test with the reason; in CI
// (DOCKINIT_REQUIRE_SYSTEM_TESTS=1) it is a failure, like every other system
// prerequisite (see system.ts).
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { REPO } from "./fixtures.js";
import { systemTestsRequired } from "./system.js";

export const MOTO_PYTHON = process.env.DOCKINIT_MOTO_PYTHON ?? join(REPO, ".cache", "moto-venv", "bin", "python");

const INSTALL_HINT = 'python3 -m venv .cache/moto-venv && .cache/moto-venv/bin/pip install "moto[server]"';

/** Why moto cannot run here, or undefined when it can. */
export function motoMissing(python: string = MOTO_PYTHON): string | undefined {
  if (!existsSync(python)) return `needs moto: ${python} does not exist (${INSTALL_HINT}, or set DOCKINIT_MOTO_PYTHON)`;
  // The [server] extra is what brings flask/werkzeug; a bare `moto` cannot serve.
  const probe = spawnSync(python, ["-c", "import moto.server, flask, werkzeug"], { encoding: "utf8", timeout: 60_000 });
  if (probe.status !== 0) {
    const why = (probe.stderr || probe.error?.message || "").trim().split("\n").pop() ?? "";
    return `needs moto[server] in ${python}: ${why}`;
  }
  return undefined;
}

/** For `describe.skipIf(...)`, like skipUnless(): a reason locally, a throw in CI. */
export function skipUnlessMoto(): string | false {
  const missing = motoMissing();
  if (!missing) return false;
  if (systemTestsRequired) throw new Error(`DOCKINIT_REQUIRE_SYSTEM_TESTS=1 but this test ${missing}`);
  console.warn(`skipping: ${missing}`);
  return missing;
}

export interface MotoServer {
  /** e.g. http://127.0.0.1:40123: give it to the SDK as the EC2 endpoint. */
  endpoint: string;
  /** Forget every resource (moto's /moto-api/reset). */
  reset(): Promise<void>;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => (port ? resolve(port) : reject(new Error("no free port"))));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Every server still running, so a crashed test run does not leave moto behind. */
const running = new Set<ChildProcess>();
process.once("exit", () => {
  for (const child of running) killGroup(child, "SIGKILL");
});

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal); // its own process group (detached)
  } catch {
    /* already gone */
  }
}

/**
 * Start `python -m moto.server` on 127.0.0.1 and a free port, and wait (at most
 * `timeoutMs`) until it answers. A port taken between probing and binding is
 * retried with another one.
 */
export async function startMoto(opts: { python?: string; timeoutMs?: number } = {}): Promise<MotoServer> {
  const python = opts.python ?? MOTO_PYTHON;
  const timeoutMs = opts.timeoutMs ?? 60_000;
  let lastError: Error | undefined;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startOnce(python, await freePort(), timeoutMs);
    } catch (err) {
      lastError = err as Error;
      if (!/address already in use/i.test(lastError.message)) throw lastError;
    }
  }
  throw lastError ?? new Error("moto did not start");
}

async function startOnce(python: string, port: number, timeoutMs: number): Promise<MotoServer> {
  const endpoint = `http://127.0.0.1:${port}`;
  const child = spawn(python, ["-m", "moto.server", "-H", "127.0.0.1", "-p", String(port)], {
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
    env: { ...process.env, PYTHONUNBUFFERED: "1" },
  });
  running.add(child);
  let output = "";
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString("utf8")).slice(-4000);
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.once("exit", () => running.delete(child));

  const stop = async () => {
    killGroup(child, "SIGTERM");
    const done = await Promise.race([exited.then(() => true), sleep(5_000).then(() => false)]);
    if (!done) {
      killGroup(child, "SIGKILL");
      await exited;
    }
  };

  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`moto exited (${child.exitCode ?? child.signalCode}) before answering on ${endpoint}:\n${output}`);
    }
    try {
      const res = await fetch(`${endpoint}/moto-api/`, { signal: AbortSignal.timeout(2_000) });
      if (res.ok) break;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`moto did not answer on ${endpoint} within ${timeoutMs} ms:\n${output}`);
    }
    await sleep(200);
  }

  return {
    endpoint,
    async reset() {
      const res = await fetch(`${endpoint}/moto-api/reset`, { method: "POST", signal: AbortSignal.timeout(10_000) });
      if (!res.ok) throw new Error(`moto reset failed: HTTP ${res.status}`);
    },
    stop,
  };
}
