/** Typed reads off an untrusted event object, shared by the execution and agent event parsers (internal). */

/** Thrown by {@link Fields} on the first bad field; caught by the event parsers. */
export class FieldError extends Error {
  constructor(
    readonly field: string,
    readonly expected: string,
    readonly got: unknown,
  ) {
    super(`${field}: expected ${expected}`);
  }
}

/**
 * Typed reads off the untrusted object. Each getter returns the narrowed value or throws a
 * {@link FieldError}, which keeps the variant constructors above free of `undefined` checks.
 */
export class Fields<T extends string = string> {
  constructor(
    private readonly obj: Record<string, unknown>,
    readonly type: T,
  ) {}

  has(key: string): boolean {
    return Object.hasOwn(this.obj, key) && this.obj[key] !== undefined;
  }

  raw(key: string): unknown {
    return Object.hasOwn(this.obj, key) ? this.obj[key] : undefined;
  }

  /** Reads an optional field: absent → undefined, present → checked by `read`. */
  optional<T>(key: string, read: () => T): T | undefined {
    return this.has(key) ? read() : undefined;
  }

  boolean(key: string): boolean {
    const v = this.raw(key);
    if (typeof v !== 'boolean') this.fail(key, 'true or false', v);
    return v;
  }

  string(key: string): string {
    const v = this.raw(key);
    if (typeof v !== 'string') this.fail(key, 'a string', v);
    return v;
  }

  number(key: string): number {
    const v = this.raw(key);
    if (typeof v !== 'number' || !Number.isFinite(v)) this.fail(key, 'a number', v);
    return v;
  }

  nonNegativeNumber(key: string): number {
    const v = this.raw(key);
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) this.fail(key, 'a number >= 0', v);
    return v;
  }

  positiveInteger(key: string): number {
    const v = this.raw(key);
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) this.fail(key, 'a positive integer', v);
    return v;
  }

  nonNegativeInteger(key: string): number {
    const v = this.raw(key);
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) this.fail(key, 'an integer >= 0', v);
    return v;
  }

  integerOrNull(key: string): number | null {
    const v = this.raw(key);
    if (v === null) return null;
    if (typeof v !== 'number' || !Number.isSafeInteger(v)) this.fail(key, 'an integer or null', v);
    return v;
  }

  object(key: string): Record<string, unknown> {
    const v = this.raw(key);
    if (typeof v !== 'object' || v === null || Array.isArray(v)) this.fail(key, 'a JSON object', v);
    return v as Record<string, unknown>;
  }

  oneOf<const V extends string>(key: string, allowed: readonly V[]): V {
    const v = this.raw(key);
    if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) {
      this.fail(key, `one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}`, v);
    }
    return v as V;
  }

  private fail(key: string, expected: string, got: unknown): never {
    throw new FieldError(`${this.type}.${key}`, expected, got);
  }
}

