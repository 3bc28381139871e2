/**
 * Process exit codes of every command, documented in `--help` (EXIT_CODES_HELP).
 * 2 for usage and configuration follows the shell convention (bash: "misuse of builtins").
 */
export const ExitCode = {
  Ok: 0,
  /** Something failed at run time: the store or the database unreachable, an I/O error. */
  Runtime: 1,
  /** Invalid configuration or command line. */
  Config: 2,
  /** `verify` found objects that differ from the index, or are missing. */
  VerifyFailed: 3,
  /** `backfill` or `status --study`: a study is not complete against its source. */
  Incomplete: 4,
} as const;

export const EXIT_CODES_HELP = `
Exit codes:
  0  success
  1  runtime failure (store or database unreachable, I/O error)
  2  bad configuration or command line
  3  verify: at least one object is missing or differs from its index row
  4  backfill, status --study: a study is not complete against its source`;
