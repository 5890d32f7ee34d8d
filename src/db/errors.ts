/** A unique-key violation, as either driver reports it (MySQL/MariaDB errno 1062, SQLite SQLITE_CONSTRAINT_UNIQUE/PRIMARYKEY). */
export function isDuplicateKey(err: unknown): boolean {
  const e = err as { code?: string; errno?: number; driverError?: { code?: string; errno?: number } } | null;
  if (!e || typeof e !== 'object') return false;
  const code = e.code ?? e.driverError?.code ?? '';
  const errno = e.errno ?? e.driverError?.errno;
  return (
    errno === 1062 ||
    code === 'ER_DUP_ENTRY' ||
    code === 'SQLITE_CONSTRAINT_UNIQUE' ||
    code === 'SQLITE_CONSTRAINT_PRIMARYKEY'
  );
}
