/** Ends an exhaustive `switch`: a value the type system says cannot exist. */
export function assertNever(value: never, what: string): never {
  throw new Error(`unexpected ${what}: ${JSON.stringify(value)}`);
}
