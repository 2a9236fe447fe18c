/** Bearer-token check for the API_TOKEN secret, compared in constant time. */
import type { Env } from "./env";
import { HttpError } from "./http";

const BEARER = /^Bearer +(\S+) *$/i;

/**
 * Throws 401 unless the request carries "Authorization: Bearer <API_TOKEN>". The Worker fails
 * closed: with no API_TOKEN bound (or an empty one) it refuses every request with 503, so a
 * deployment that forgot the secret is never an open endpoint.
 */
export async function authorize(request: Request, env: Env): Promise<void> {
  if (env.API_TOKEN === undefined || env.API_TOKEN === "") {
    throw new HttpError(503, "unavailable", "the Worker is not configured to accept requests", {
      detail: "API_TOKEN is not bound: every completion is refused",
    });
  }
  const presented = BEARER.exec(request.headers.get("authorization") ?? "")?.[1] ?? "";
  const valid = await constantTimeEqual(presented, env.API_TOKEN);
  if (!valid) {
    throw new HttpError(401, "unauthorized", "missing or invalid bearer token", {
      headers: { "www-authenticate": 'Bearer realm="ai-worker"' },
    });
  }
}

/**
 * Hashing first gives both sides the same length, so neither the content nor the length of
 * the secret leaks through timing (timingSafeEqual itself requires equal lengths).
 */
async function constantTimeEqual(a: string, b: string): Promise<boolean> {
  const encoder = new TextEncoder();
  const [hashA, hashB] = await Promise.all([
    crypto.subtle.digest("SHA-256", encoder.encode(a)),
    crypto.subtle.digest("SHA-256", encoder.encode(b)),
  ]);
  return crypto.subtle.timingSafeEqual(hashA, hashB);
}
