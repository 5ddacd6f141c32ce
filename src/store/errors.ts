// Errors the store raises on purpose, as named classes so callers (the CLI,
// `nanoclaw doctor`, tool dispatch) can tell a refusal from a broken database.

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
