// The executable: real process I/O around runCli. The only process.exit.
import { fstatSync, readFileSync, writeSync } from "node:fs";
import { runCli } from "./main.js";

/**
 * Output straight to the file descriptor. process.stdout and process.stderr
 * are streams built on first use (~1.5 ms each at start-up, most of a run
 * that prints one line). A non-blocking descriptor that is full (EAGAIN)
 * hands over to the stream for good, so output keeps its order; a closed
 * pipe (EPIPE, e.g. `| head -1`) ends the output quietly, as in other CLIs.
 */
let streamsUsed = false;

function descriptorWriter(fd: 1 | 2, stream: () => NodeJS.WriteStream): (text: string | Uint8Array) => void {
  let closed = false;
  return (text) => {
    const bytes = typeof text === "string" ? Buffer.from(text, "utf8") : text;
    let offset = 0;
    // Once either descriptor has handed over, both write through their
    // streams, so stdout and stderr keep their order in a shared pipe (2>&1).
    if (!streamsUsed && !closed) {
      try {
        while (offset < bytes.length) offset += writeSync(fd, bytes, offset);
        return;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === "EPIPE") closed = true;
        else if (code === "EAGAIN") streamsUsed = true;
        else throw err;
      }
    }
    if (!closed) stream().write(bytes.subarray(offset));
  };
}

runCli(process.argv.slice(2), {
  stdout: descriptorWriter(1, () => process.stdout),
  stderr: descriptorWriter(2, () => process.stderr),
  cwd: process.cwd(),
  env: process.env,
  // Asked only when there is a diagnostic to colour: building process.stderr
  // (and node:tty) costs ~2.5 ms that a clean run need not pay.
  get stderrIsTTY() {
    return process.stderr.isTTY;
  },
  // Asked by `rollout` (confirmation, live progress line) and by `render
  // --stdout` of gzip: a pipe or a file is no terminal, known from one fstat
  // without building process.stdout (and loading node:net for a pipe).
  get stdoutIsTTY() {
    try {
      if (!fstatSync(1).isCharacterDevice()) return false;
    } catch {
      return false;
    }
    return process.stdout.isTTY;
  },
  get stdinIsTTY() {
    return process.stdin.isTTY;
  },
  readStdin: () => readFileSync(0),
  async ask(question) {
    // Not import(): the bundle runs inside vm.Script (scripts/launcher.cjs), which has no dynamic import.
    const { createInterface } = process.getBuiltinModule("node:readline/promises") as typeof import("node:readline/promises");
    const rl = createInterface({ input: process.stdin, output: process.stderr });
    // Ctrl-C at the prompt is a "no", not a prompt that never returns.
    const giveUp = new AbortController();
    rl.once("SIGINT", () => giveUp.abort());
    try {
      return await rl.question(question, { signal: giveUp.signal });
    } catch {
      process.stderr.write("\n");
      return "";
    } finally {
      rl.close();
    }
  },
  onInterrupt(handler) {
    process.on("SIGINT", handler);
    return () => process.off("SIGINT", handler);
  },
}).then(
  (code) => {
    // Every byte is already written (synchronously) unless a stream took
    // over: exit now rather than wait for the garbage collector's idle task.
    if (streamsUsed) process.exitCode = code;
    else process.exit(code);
  },
  (err: unknown) => {
    // A bug, not something the user did: one line and where to report it; the
    // stack (of the minified bundle) only when asked for with DOCKINIT_DEBUG=1.
    const message = err instanceof Error ? err.message : String(err);
    const stack = process.env.DOCKINIT_DEBUG === "1" && err instanceof Error && err.stack ? `\n${err.stack}` : "";
    process.stderr.write(`dockinit: internal error: ${message}${stack}\n  this is a bug in dockinit: please report it with the command you ran (DOCKINIT_DEBUG=1 shows the stack)\n`);
    process.exitCode = 70;
  },
);
