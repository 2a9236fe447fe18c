/** Entry point of the AI Worker: routing, error bodies and one structured log line per request. */
import type { Env } from "./env";
import { HttpError, describe, errorResponse } from "./http";
import { log } from "./log";
import { discardUnreadBody } from "./request-body";
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
    try {
      const handler = match(routes, request.method, pathname);
      response = await handler(request, env, { requestId });
    } catch (err) {
      failure =
        err instanceof HttpError
          ? err
          : new HttpError(500, "internal", "internal error", { detail: describe(err) });
      response = errorResponse(failure, requestId);
    }
    response.headers.set("x-request-id", requestId);
    await discardUnreadBody(request);

    const level = response.status >= 500 ? "error" : response.status >= 400 ? "warn" : "info";
    log(level, "request", {
      request_id: requestId,
      method: request.method,
      path: pathname,
      status: response.status,
      duration_ms: Date.now() - started,
      ...(failure && { error_code: failure.code, error: failure.message, detail: failure.options.detail }),
    });
    return response;
  },
} satisfies ExportedHandler<Env>;
