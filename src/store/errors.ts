// Errors the store raises on purpose, as named classes so callers (the CLI,
// `nanoclaw doctor`, tool dispatch) can tell a refusal from a broken database.

import fs from 'node:fs';
import path from 'node:path';

/** The database was written by a newer NanoClaw than this one; opening it could corrupt it. */
export class StoreVersionError extends Error {
  override readonly name = 'StoreVersionError';
  constructor(
    readonly dbPath: string,
    readonly dbVersion: number,
    readonly knownVersion: number,
  ) {
    super(
      `database ${dbPath} is schema version ${dbVersion}, this NanoClaw knows up to ${knownVersion}; ` +
        'upgrade NanoClaw or restore a backup',
    );
  }
}

/** A group registration collides with an existing jid, folder or the one main group. */
export class GroupConflictError extends Error {
  override readonly name = 'GroupConflictError';
}

/** A value the schema does not allow (unknown audit code, bad folder, duplicate task id). */
export class StoreInputError extends Error {
  override readonly name = 'StoreInputError';
}

const FULL_CODES = new Set(['SQLITE_FULL', 'ENOSPC', 'EDQUOT']);
/** Less free space than this beside an I/O error means the disk is full. */
const NEARLY_FULL_BYTES = 256 * 1024;

/**
 * What kind of storage trouble `err` is, or null when it is not a storage
 * error (a bug or a refusal must not be mistaken for a full disk and retried).
 */
export function storageProblem(err: unknown): 'full' | 'readonly' | 'damaged' | 'io' | 'busy' | null {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== 'string') return null;
  if (FULL_CODES.has(code)) return 'full';
  if (code.startsWith('SQLITE_READONLY') || code === 'EROFS' || code === 'EACCES' || code === 'EPERM')
    return 'readonly';
  if (code === 'SQLITE_CORRUPT' || code === 'SQLITE_NOTADB' || code.startsWith('SQLITE_CORRUPT'))
    return 'damaged';
  if (code.startsWith('SQLITE_IOERR') || code === 'SQLITE_CANTOPEN' || code === 'EIO') return 'io';
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) return 'busy';
  return null;
}

/** The database file cannot be opened or used; the message names the file, the problem and the fix. */
export class StoreOpenError extends Error {
  override readonly name = 'StoreOpenError';
  constructor(
    readonly dbPath: string,
    readonly problem: NonNullable<ReturnType<typeof storageProblem>>,
    options?: ErrorOptions,
  ) {
    super(StoreOpenError.describe(dbPath, problem), options);
  }

  static describe(dbPath: string, problem: NonNullable<ReturnType<typeof storageProblem>>): string {
    const check = `check it with: sqlite3 ${dbPath} 'PRAGMA integrity_check'`;
    switch (problem) {
      case 'damaged':
        return (
          `database ${dbPath} is damaged (not a SQLite database, or malformed). ` +
          `Stop NanoClaw, move the file aside and restore your latest backup of it (with its -wal file if any); ${check}`
        );
      case 'readonly':
        return (
          `database ${dbPath} (or its directory) is read-only for this user. ` +
          `Make the data directory writable (e.g. chown -R $(id -u) ${path.dirname(dbPath)}), or remount the disk read-write`
        );
      case 'full':
        return (
          `the disk holding ${dbPath} is full. Free some space (df -h ${path.dirname(dbPath)}), ` +
          'then start again; nothing stored is lost'
        );
      case 'busy':
        return `database ${dbPath} is locked by another process for too long; is another nanoclaw command stuck?`;
      case 'io':
        return `database ${dbPath} cannot be read or written (I/O error). Check the disk (dmesg), then ${check}`;
    }
  }
}

/**
 * Names the database in a storage error from anywhere (open, start-up, a
 * command): a StoreOpenError for storage trouble, `err` unchanged otherwise.
 * An I/O error on a read-only file system is reported as read-only.
 */
export function asStoreError(err: unknown, dbPath: string): unknown {
  if (err instanceof StoreOpenError || err instanceof StoreVersionError) return err;
  let problem = storageProblem(err);
  if (!problem) return err;
  if (problem === 'io' || problem === 'busy') {
    // SQLite reports a file it cannot create or grow (the WAL index on a full disk, a
    // read-only mount) as an I/O error: look at the disk to name the real cause.
    const dir = path.dirname(dbPath);
    try {
      fs.accessSync(dir, fs.constants.W_OK);
      const stats = fs.statfsSync(dir);
      if (stats.bavail * stats.bsize < NEARLY_FULL_BYTES) problem = 'full';
    } catch (accessErr) {
      const code = (accessErr as NodeJS.ErrnoException).code;
      if (code === 'EROFS' || code === 'EACCES') problem = 'readonly';
    }
  }
  return new StoreOpenError(dbPath, problem, { cause: err });
}
