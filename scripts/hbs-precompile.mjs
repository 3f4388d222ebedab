// Shared by the esbuild build and vitest: turns a templates/*.hbs file into a
// module exporting Handlebars' precompiled template spec, so the CLI ships only
// the Handlebars runtime and never parses a template at run time. The compile
// options live here, once: noEscape (shell is not HTML) and strict (a missing
// value is a render error, never an empty string in a root script).
import Handlebars from "handlebars";

export const HBS_OPTIONS = { noEscape: true, strict: true };

export function precompileHbs(source) {
  return `export default ${Handlebars.precompile(source, HBS_OPTIONS)};\n`;
}
