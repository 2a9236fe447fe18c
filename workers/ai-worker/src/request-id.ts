/** Picks the id that ties a request's log line, error body and gateway call together. */

// A caller-supplied id is echoed back and logged, so only accept a short, plain token: the
// contract's RequestId pattern.
const ACCEPTABLE_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export function requestIdOf(request: Request): string {
  for (const header of ["x-request-id", "cf-ray"]) {
    const value = request.headers.get(header);
    if (value !== null && ACCEPTABLE_ID.test(value)) return value;
  }
  return crypto.randomUUID();
}
