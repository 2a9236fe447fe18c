/** Entry point of the AI Worker: routing, error bodies and one structured log line per request. */
import { discardUnreadBody } from "./body";
import type { Env } from "./env";
import { ClientAbortedError, HttpError, describe, errorResponse } from "./http";
import { log } from "./log";
import { bounded } from "./redact";
import { requestIdOf } from "./request-id";
import { match } from "./router";
import { routes } from "./routes";

export default {
  async fetch(request: Request, env: Env, _ctx: ExecutionContext): Promise<Response> {
    const started = Date.now();
    const requestId = requestIdOf(request);
    const { pathname } = new URL(request.url);

    let response: Response;
    let failure: HttpError | undefined;
    let aborted: ClientAbortedError | undefined;
    try {
      const handler = match(routes, request.method, pathname);
      response = await handler(request, env, { requestId });
    } catch (err) {
      if (err instanceof ClientAbortedError) aborted = err;
      failure =
        err instanceof HttpError
          ? err
          : aborted !== undefined
            ? new HttpError(400, "bad_request", aborted.message, { detail: describe(aborted.cause) })
            : new HttpError(500, "internal", "internal error", { detail: describe(err) });
      response = errorResponse(failure, requestId);
    }
    response.headers.set("x-request-id", requestId);
    await discardUnreadBody(request);

    // A client that went away is told nothing; its line says so (499, as nginx logs it).
    const status = aborted !== undefined ? 499 : response.status;
    const level = aborted !== undefined ? "info" : status >= 500 ? "error" : status >= 400 ? "warn" : "info";
    log(level, "request", {
      request_id: requestId,
      method: bounded(request.method, 16),
      path: bounded(pathname),
      status,
      duration_ms: Date.now() - started,
      ...(aborted !== undefined && { client_aborted: true }),
      ...(failure && { error_code: failure.code, error: failure.message, detail: failure.options.detail }),
    });
    return response;
  },
} satisfies ExportedHandler<Env>;
