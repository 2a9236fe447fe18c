/** Picks the id that ties a request's log line, error body and gateway call together. */

import { REQUEST_ID } from "./contract";

// A caller-supplied id is echoed back and logged, so only accept a short, plain token: the
// contract's RequestId pattern.
const ACCEPTABLE_ID = REQUEST_ID;

export function requestIdOf(request: Request): string {
  for (const header of ["x-request-id", "cf-ray"]) {
    const value = request.headers.get(header);
    if (value !== null && ACCEPTABLE_ID.test(value)) return value;
  }
  return crypto.randomUUID();
}
