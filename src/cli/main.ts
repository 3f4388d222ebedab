// The command line: parse argv, call a stage, print, return an exit code.
// This is the only layer that prints; bin.ts is the only one that exits.
// Exit codes: 0 ok, 1 invalid configuration or a failed check, 2 usage, 3 AWS.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, relative, isAbsolute } from "node:path";
import { Command, CommanderError } from "commander";
import { renderBundle, userDataBase64 } from "../api.js";
import { OutputFolderNotOwned, writeBundle, type WriteOutcome } from "../bundle/emit.js";
import { USER_DATA_BUDGET } from "../bundle/user-data.js";
import { checkCloudInitIfAsked } from "../bundle/cloud-init/lazy.js";
import { DEFAULT_CONFIG_NAME, STARTER_CONFIG } from "../config/default.js";
import { catalogue, hasErrors } from "../config/errors.js";
import { configJsonSchema } from "../config/schema.js";
import { explainFirewall, explainFirewallData } from "../render/explain.js";
import { VERSION } from "../version.js";
import { registerAwsCommands } from "./aws-commands.js";
import { configFileOptions, EXIT, fileFailure, json, pickConfig, printDiagnostics, resolveIn, STDIN_NAME, takeConfigArgument, thousands, type CliIO, type ConfigOpts } from "./io.js";

/** The JSON Schema file `init` writes beside the starter, which names it in its yaml-language-server comment. */
const SCHEMA_FILE = "dockinit.schema.json";

/** Whether `path` is `dir` itself or lies under it. */
const isInside = (path: string, dir: string) => {
  const rel = relative(dir, path);
  return rel === "" || (!rel.startsWith("..") && !isAbsolute(rel));
};

/** Write a file; on a file-system error (no such folder, no permission, …) say so and return the exit code. */
function writeOrSay(io: CliIO, path: string, text: string, shown: string): number | undefined {
  try {
    writeFileSync(path, text);
    return undefined;
  } catch (err) {
    const failure = fileFailure(err);
    if (!failure) throw err;
    io.stderr(`dockinit: cannot write ${shown}: ${failure}\n`);
    return EXIT.invalid;
  }
}

export { EXIT, pickConfig, printDiagnostics, type CliIO } from "./io.js";

/** check's and render's --cloud-init (user_data.cloud_init names it in the file). */
const CLOUD_INIT_OPTION =
  "validate the cloud-config, and cloud-config parts, against this cloud-init's own schema: a version (22.2, 22.4, 25.1, 26.2, or one between) or an OS name (al2023, debian-12, ubuntu-24.04, ...)";

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
    .description("write a commented starter dockinit.yaml and the dockinit.schema.json it names")
    .option("-o, --output <file>", "where to write it", "dockinit.yaml")
    .option("-f, --force", "overwrite an existing file")
    .action((opts: { output: string; force?: boolean }) => {
      const target = resolveIn(io, opts.output);
      if (existsSync(target) && !opts.force) {
        io.stderr(`dockinit: ${opts.output} exists; use --force to overwrite it\n`);
        exitCode = EXIT.invalid;
        return;
      }
      // The starter's "$schema=./dockinit.schema.json" comment names this file, beside it.
      const schemaPath = join(dirname(target), SCHEMA_FILE);
      const schemaText = `${JSON.stringify(configJsonSchema(), null, 2)}\n`;
      const schemaShown = join(dirname(opts.output), SCHEMA_FILE);
      const failed = writeOrSay(io, target, STARTER_CONFIG, opts.output);
      if (failed) {
        exitCode = failed;
        return;
      }
      io.stdout(`wrote ${opts.output}\n`);
      if (existsSync(schemaPath) && readFileSync(schemaPath, "utf8") !== schemaText && !opts.force) {
        io.stderr(`dockinit: left ${schemaShown} as it is (it differs from this version's schema; \`dockinit schema > ${schemaShown}\` updates it)\n`);
        return;
      }
      const schemaFailed = writeOrSay(io, schemaPath, schemaText, schemaShown);
      if (schemaFailed) exitCode = schemaFailed;
      else io.stdout(`wrote ${schemaShown} (editors validate ${opts.output} with it)\n`);
    });

  const configOption = (cmd: Command) => configFileOptions(cmd).option("--json", "machine-readable output on stdout");
  /** The positional config and -c agree, else exit 2: true when the command may go on. */
  const configArgumentOk = (positional: string | undefined, opts: ConfigOpts) => {
    if (takeConfigArgument(io, positional, opts)) return true;
    exitCode = EXIT.usage;
    return false;
  };

  configOption(program.command("check").description("validate only; non-zero exit on any error")).option("--cloud-init <target>", CLOUD_INIT_OPTION).action(async (positional: string | undefined, opts: ConfigOpts & { cloudInit?: string }) => {
    if (!configArgumentOk(positional, opts)) return;
    const loaded = pickConfig(opts, io);
    const rendered = loaded.model ? renderBundle(loaded) : { diagnostics: loaded.diagnostics };
    const bundle = "bundle" in rendered ? rendered.bundle : undefined;
    const target = await checkCloudInitIfAsked(opts.cloudInit, loaded, bundle);
    const diags = [...rendered.diagnostics, ...target.diagnostics];
    const ok = !hasErrors(diags);
    if (opts.json) {
      io.stdout(`${JSON.stringify({ ok, file: loaded.file, diagnostics: diags, userData: bundle?.manifest.userData, ...(target.checked ? { cloudInit: target.checked } : {}) }, null, 2)}\n`);
    } else {
      printDiagnostics(io, diags, loaded.source);
      if (ok && bundle) io.stdout(`${loaded.file}: ok; ${budgetLine(bundle.userData.length, bundle.encoding)}${target.checked ? `; valid for ${target.checked}` : ""}\n`);
    }
    exitCode = target.usage ? EXIT.usage : ok ? EXIT.ok : EXIT.invalid;
  });

  configOption(program.command("render").description("validate and write the bundle"))
    .option("-o, --out <dir>", "output directory (replaced only when new, empty, or holding a previous render alone)", "out")
    .option("--stdout", "write the user-data alone to stdout (nothing to disk)")
    .option("--cloud-init <target>", CLOUD_INIT_OPTION)
    .action(async (positional: string | undefined, opts: ConfigOpts & { out: string; stdout?: boolean; cloudInit?: string }) => {
      if (!configArgumentOk(positional, opts)) return;
      const loaded = pickConfig(opts, io);
      const rendered = renderBundle(loaded);
      const target = await checkCloudInitIfAsked(opts.cloudInit, loaded, rendered.bundle);
      rendered.diagnostics.push(...target.diagnostics);
      const ok = !hasErrors(rendered.diagnostics) && rendered.bundle !== undefined;
      if (!opts.json || !ok) printDiagnostics(io, rendered.diagnostics, loaded.source);
      if (!ok || !rendered.bundle) {
        if (opts.json) io.stdout(`${JSON.stringify({ ok: false, file: loaded.file, diagnostics: rendered.diagnostics }, null, 2)}\n`);
        exitCode = target.usage ? EXIT.usage : EXIT.invalid;
        return;
      }
      const bundle = rendered.bundle;
      if (opts.stdout) {
        // gzip bytes on a terminal are noise that can leave it in a strange state.
        if (bundle.encoding === "gzip" && io.stdoutIsTTY) {
          io.stderr("dockinit: the user-data is gzip (binary); not writing it to a terminal: redirect it, e.g. `dockinit render --stdout > user-data`\n");
          exitCode = EXIT.usage;
          return;
        }
        io.stdout(bundle.userData);
        return;
      }
      const outDir = resolveIn(io, opts.out);
      // "out/", "./", "/": the folder as the user named it, once with its slash.
      const outTrimmed = opts.out.replace(/\/+$/, "");
      const outShown = outTrimmed === "" ? "/" : `${outTrimmed}/`;
      const refuse = (code: "DI080" | "DI081", words: string, extra: Record<string, unknown> = {}) => {
        io.stderr(`dockinit: error ${code}: ${words}\n  hint: ${catalogue[code].hint}\n`);
        if (opts.json) io.stdout(json({ ok: false, file: loaded.file, error: { code, message: words, ...extra } }));
        exitCode = EXIT.invalid;
      };
      // The config file is never replaced or removed by the bundle written around it.
      const configPath = loaded.file === DEFAULT_CONFIG_NAME || loaded.file === STDIN_NAME ? undefined : resolveIn(io, loaded.file);
      if (configPath && isInside(configPath, outDir)) return refuse("DI081", `${outShown} holds the configuration file ${loaded.file}; nothing written`);
      let outcome: WriteOutcome;
      try {
        outcome = writeBundle(bundle, outDir);
      } catch (err) {
        if (err instanceof OutputFolderNotOwned) {
          if (err.notAFolder) return refuse("DI080", `${opts.out} is not a folder; nothing written or removed`, { entries: err.entries });
          const shown = err.entries.slice(0, 8).join(", ") + (err.entries.length > 8 ? `, and ${err.entries.length - 8} more` : "");
          return refuse("DI080", `${outShown} holds what dockinit did not write: ${shown}; nothing written or removed`, { entries: err.entries });
        }
        const failure = fileFailure(err);
        if (!failure) throw err;
        io.stderr(`dockinit: cannot write ${outShown}: ${failure}\n`);
        if (opts.json) io.stdout(json({ ok: false, file: loaded.file, error: { kind: "file-system", code: (err as NodeJS.ErrnoException).code, message: `cannot write ${outShown}: ${failure}` } }));
        exitCode = EXIT.invalid;
        return;
      }
      if (opts.json) {
        // userDataBase64: what CloudFormation, CDK and EC2's API take (Terraform: filebase64("out/user-data")).
        const result = { ok: true, file: loaded.file, out: opts.out, written: outcome === "written", bundleId: bundle.bundleId, diagnostics: rendered.diagnostics, manifest: bundle.manifest, userDataBase64: userDataBase64(bundle), ...(target.checked ? { cloudInit: target.checked } : {}) };
        io.stdout(`${JSON.stringify(result, null, 2)}\n`);
      } else {
        const did = outcome === "unchanged" ? "up to date:" : "wrote";
        io.stdout(`${did} ${outShown} (${bundle.files.length} files); ${budgetLine(bundle.manifest.userData.bytes, bundle.manifest.userData.encoding)}${target.checked ? `; valid for ${target.checked}` : ""}\n`);
      }
    });

  configOption(program.command("explain").description("print the firewall a config produces, each rule in plain words (--json: as data)")).action((positional: string | undefined, opts: ConfigOpts) => {
    if (!configArgumentOk(positional, opts)) return;
    const loaded = pickConfig(opts, io);
    if (!opts.json || !loaded.model) printDiagnostics(io, loaded.diagnostics, loaded.source);
    if (!loaded.model) {
      if (opts.json) io.stdout(json({ ok: false, file: loaded.file, diagnostics: loaded.diagnostics }));
      exitCode = EXIT.invalid;
      return;
    }
    if (opts.json) io.stdout(json({ ok: true, file: loaded.file, diagnostics: loaded.diagnostics, ...explainFirewallData(loaded.model) }));
    else io.stdout(explainFirewall(loaded.model));
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
