/** Making what the Worker logs safe: URLs without their secrets, untrusted text bounded. */

/** How much of an untrusted string (a path, a header) a log line or a message repeats. */
export const MAX_ECHO_CHARS = 256;

/** `text` if short, else its start and its length: a 64 KiB path is not echoed whole. */
export function bounded(text: string, max = MAX_ECHO_CHARS): string {
  return text.length <= max ? text : `${text.slice(0, max)}...(${text.length} characters)`;
}

/**
 * A URL as it may be logged: userinfo and query values become REDACTED, the fragment is
 * dropped. Text that does not parse as a URL is not shown at all.
 */
export function redactUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return "(unparsable URL, not shown)";
  }
  if (url.username !== "" || url.password !== "") {
    url.username = "REDACTED";
    url.password = "";
  }
  for (const key of new Set(url.searchParams.keys())) url.searchParams.set(key, "REDACTED");
  url.hash = "";
  return bounded(url.toString());
}
