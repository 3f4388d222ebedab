// The command line: parse argv, call a stage, print, return an exit code.
// This is the only layer that prints; bin.ts is the only one that exits.
// Exit codes: 0 ok, 1 invalid configuration or a failed check, 2 usage, 3 AWS.
import { existsSync, writeFileSync } from "node:fs";
import { Command, CommanderError } from "commander";
import { renderBundle, userDataBase64 } from "../api.js";
import { writeBundle } from "../bundle/emit.js";
import { USER_DATA_BUDGET } from "../bundle/user-data.js";
import { STARTER_CONFIG } from "../config/default.js";
import { hasErrors } from "../config/errors.js";
import { configJsonSchema } from "../config/schema.js";
import { explainFirewall } from "../render/explain.js";
import { VERSION } from "../version.js";
import { registerAwsCommands } from "./aws-commands.js";
import { EXIT, pickConfig, printDiagnostics, resolveIn, thousands, type CliIO, type ConfigOpts } from "./io.js";

export { EXIT, pickConfig, printDiagnostics, type CliIO } from "./io.js";

const budgetLine = (bytes: number, encoding: string) =>
  `user-data: ${thousands(bytes)} of ${thousands(USER_DATA_BUDGET)} bytes${encoding === "gzip" ? " (gzip)" : ""}`;

export async function runCli(argv: string[], io: CliIO): Promise<number> {
  let exitCode: number = EXIT.ok;
  const program = new Command();
  program
    .name("dockinit")
    .description("Turn dockinit.yaml into the EC2 user-data of a correctly networked Docker host.")
    .version(VERSION)
    .exitOverride()
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr })
    .showHelpAfterError(false);

  program
    .command("init")
    .description("write a commented starter dockinit.yaml")
    .option("-o, --output <file>", "where to write it", "dockinit.yaml")
    .option("-f, --force", "overwrite an existing file")
    .action((opts: { output: string; force?: boolean }) => {
      const target = resolveIn(io, opts.output);
      if (existsSync(target) && !opts.force) {
        io.stderr(`dockinit: ${opts.output} exists; use --force to overwrite it\n`);
        exitCode = EXIT.invalid;
        return;
      }
      writeFileSync(target, STARTER_CONFIG);
      io.stdout(`wrote ${opts.output}\n`);
    });

  const configOption = (cmd: Command) => cmd.option("-c, --config <file>", "configuration file (default ./dockinit.yaml)").option("--json", "machine-readable output on stdout");

  configOption(program.command("check").description("validate only; non-zero exit on any error")).action((opts: ConfigOpts) => {
    const loaded = pickConfig(opts, io);
    const rendered = loaded.model ? renderBundle(loaded) : { diagnostics: loaded.diagnostics };
    const diags = rendered.diagnostics;
    const ok = !hasErrors(diags);
    const bundle = "bundle" in rendered ? rendered.bundle : undefined;
    if (opts.json) {
      io.stdout(`${JSON.stringify({ ok, file: loaded.file, diagnostics: diags, userData: bundle?.manifest.userData }, null, 2)}\n`);
    } else {
      printDiagnostics(io, diags, loaded.source);
      if (ok && bundle) io.stdout(`${loaded.file}: ok; ${budgetLine(bundle.userData.length, bundle.encoding)}\n`);
    }
    exitCode = ok ? EXIT.ok : EXIT.invalid;
  });

  configOption(program.command("render").description("validate and write the bundle"))
    .option("-o, --out <dir>", "output directory", "out")
    .option("--stdout", "write the user-data alone to stdout (nothing to disk)")
    .action((opts: ConfigOpts & { out: string; stdout?: boolean }) => {
      const loaded = pickConfig(opts, io);
      const rendered = renderBundle(loaded);
      const ok = !hasErrors(rendered.diagnostics) && rendered.bundle !== undefined;
      if (!opts.json || !ok) printDiagnostics(io, rendered.diagnostics, loaded.source);
      if (!ok || !rendered.bundle) {
        if (opts.json) io.stdout(`${JSON.stringify({ ok: false, file: loaded.file, diagnostics: rendered.diagnostics }, null, 2)}\n`);
        exitCode = EXIT.invalid;
        return;
      }
      const bundle = rendered.bundle;
      if (opts.stdout) {
        io.stdout(bundle.userData);
        return;
      }
      const outcome = writeBundle(bundle, resolveIn(io, opts.out));
      if (opts.json) {
        // userDataBase64: what CloudFormation, CDK and EC2's API take (Terraform: filebase64("out/user-data")).
        const result = { ok: true, file: loaded.file, out: opts.out, written: outcome === "written", diagnostics: rendered.diagnostics, manifest: bundle.manifest, userDataBase64: userDataBase64(bundle) };
        io.stdout(`${JSON.stringify(result, null, 2)}\n`);
      } else {
        const did = outcome === "unchanged" ? "up to date:" : "wrote";
        io.stdout(`${did} ${opts.out}/ (${bundle.files.length} files); ${budgetLine(bundle.manifest.userData.bytes, bundle.manifest.userData.encoding)}\n`);
      }
    });

  configOption(program.command("explain").description("print the firewall a config produces, each rule in plain words")).action((opts: ConfigOpts) => {
    const loaded = pickConfig(opts, io);
    printDiagnostics(io, loaded.diagnostics, loaded.source);
    if (!loaded.model) {
      exitCode = EXIT.invalid;
      return;
    }
    io.stdout(explainFirewall(loaded.model));
  });

  program
    .command("schema")
    .description("print the JSON Schema of dockinit.yaml")
    .action(() => {
      io.stdout(`${JSON.stringify(configJsonSchema(), null, 2)}\n`);
    });

  // diff and push: the AWS SDK is import()ed inside their actions only.
  registerAwsCommands(program, io, (c) => (exitCode = c));

  try {
    await program.parseAsync(argv, { from: "user" });
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === "commander.helpDisplayed" || err.code === "commander.version" || err.code === "commander.help") return EXIT.ok;
      return EXIT.usage;
    }
    throw err;
  }
  return exitCode;
}
