/**
 * Errors a user can cause. Each carries the offending field or file and prints as one line;
 * the CLI shows `message` alone for these and a stack trace only for everything else (bugs).
 */
export class UserError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** An invalid job config, CLI flag or API option. `path` is the dotted field path, e.g. `optimizer.momentum`. */
export class ConfigError extends UserError {
  constructor(
    public readonly path: string,
    detail: string,
  ) {
    super(`${path}: ${detail}`);
  }
}

/** Unusable data: a missing folder, an empty class, an unreadable image. */
export class DataError extends UserError {
  constructor(
    public readonly file: string,
    detail: string,
  ) {
    super(`${file}: ${detail}`);
  }
}

/** A model file that cannot be trusted or used: bad manifest, shape mismatch, unknown architecture. */
export class ModelFormatError extends UserError {
  constructor(
    public readonly file: string,
    detail: string,
  ) {
    super(`${file}: ${detail}`);
  }
}

/** Training stopped because it cannot go on safely (NaN loss after all retries, ...). */
export class TrainingError extends UserError {}

/** An export that was written but failed its own check (a quantized model that lost too much accuracy); the previous export stays. */
export class ExportCheckError extends UserError {}
