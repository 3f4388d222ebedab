// One file the instance gets: what every renderer returns.
export interface Artifact {
  /** Absolute host path. */
  path: string;
  content: string;
  /** Octal mode as a string, e.g. "0755" (cloud-init wants a string). */
  permissions: string;
  owner: string;
  /** cloud-init `defer`: write after packages are installed. */
  defer?: boolean;
  append?: boolean;
  /** Who asked for it: dockinit itself or the user's write_files. */
  origin: "dockinit" | "user";
}
