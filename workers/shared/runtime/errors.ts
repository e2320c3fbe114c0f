/**
 * Errors that carry a name and fields of their own (HTTP, Redis, AppSync error types).
 *
 * Plain Errors with fields, never subclasses: Pulumi's closure serialization rewrites
 * `class … extends Error` into a function whose `super` call loses the message, so a subclass
 * would reach the logs of a deployed worker without one.
 */
export function namedError<Name extends string, Fields extends object = object>(
  name: Name,
  message: string,
  fields?: Fields,
  options?: { cause?: unknown },
): Error & { readonly name: Name } & Fields {
  return Object.assign(new Error(message, options), { name }, fields) as Error & { readonly name: Name } & Fields;
}
