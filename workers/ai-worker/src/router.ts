/** A tiny exact-path router: unknown path → 404, known path with another method → 405. */
import type { Env } from "./env";
import { HttpError } from "./http";
import { bounded } from "./redact";

/** What a handler knows about the request beyond the request itself. */
export interface RequestContext {
  requestId: string;
}

export type Handler = (request: Request, env: Env, context: RequestContext) => Promise<Response> | Response;

export interface Route {
  method: "GET" | "POST";
  path: string;
  handler: Handler;
}

export function match(routes: readonly Route[], method: string, path: string): Handler {
  const candidates = routes.filter((route) => route.path === path);
  if (candidates.length === 0) {
    throw new HttpError(404, "not_found", `no route for ${bounded(path)}`);
  }
  // HEAD is served by the GET handler; the runtime drops the body.
  const wanted = method === "HEAD" ? "GET" : method;
  const route = candidates.find((candidate) => candidate.method === wanted);
  if (route === undefined) {
    const allowed: string[] = candidates.map((candidate) => candidate.method);
    if (allowed.includes("GET")) allowed.push("HEAD");
    throw new HttpError(405, "method_not_allowed", `${bounded(method)} is not allowed on ${path}`, {
      headers: { allow: allowed.join(", ") },
    });
  }
  return route.handler;
}
