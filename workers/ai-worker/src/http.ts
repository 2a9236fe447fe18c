/** JSON responses and the contract's error shape: {"error": {code, message, request_id}}. */

import type { ErrorCode } from "./contract";

/**
 * An error that becomes a JSON error response. `message` is shown to the client; `detail`
 * (the underlying cause) only goes to the log.
 */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: ErrorCode,
    message: string,
    readonly options: { detail?: string; headers?: Record<string, string> } = {},
  ) {
    super(message);
    this.name = "HttpError";
  }
}

export function json(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: {
      "content-type": "application/json; charset=utf-8",
      "cache-control": "no-store",
      ...headers,
    },
  });
}

export function errorResponse(error: HttpError, requestId: string): Response {
  return json(
    { error: { code: error.code, message: error.message, request_id: requestId } },
    error.status,
    error.options.headers,
  );
}

/**
 * The client went away before its request was read whole: nobody is left to answer, so it is
 * logged as such (status 499, level info) rather than as the Worker's failure.
 */
export class ClientAbortedError extends Error {
  constructor(override readonly cause: unknown) {
    super("the client closed the request before sending all of it");
    this.name = "ClientAbortedError";
  }
}

/** A short, log-safe description of anything thrown. */
export function describe(err: unknown): string {
  if (err instanceof Error) return `${err.name}: ${err.message}`;
  return String(err);
}
