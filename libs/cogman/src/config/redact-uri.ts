/**
 * Replaces the password of a URI (`scheme://user:password@host`) with `***`. It errs on the side
 * of hiding too much: everything from the first `:` of the user info to the last `@` goes.
 */
export function redactUri(uri: string | readonly string[]): string {
  if (typeof uri !== 'string') return uri.map((one) => redactUri(one)).join(', ');
  const schemeEnd = uri.indexOf('://');
  const at = uri.lastIndexOf('@');
  if (schemeEnd < 0 || at < schemeEnd) return uri;
  const colon = uri.indexOf(':', schemeEnd + 3);
  if (colon < 0 || colon > at) return uri;
  return `${uri.slice(0, colon + 1)}***${uri.slice(at)}`;
}
