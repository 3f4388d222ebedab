// SHA-256 as lowercase hex, for the manifest and the uploader.
// node:crypto is loaded on first use, not imported: its import costs ~3 ms of
// every start, and `dockinit check` hashes nothing.
export const sha256 = (data: string | Uint8Array): string =>
  process.getBuiltinModule("node:crypto").createHash("sha256").update(data).digest("hex");
