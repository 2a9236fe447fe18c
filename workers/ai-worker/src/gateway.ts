/**
 * Client of the Go API gateway: resolves a catalog module with a bounded timeout and turns every
 * way the call can fail into a clear 404, 502 or 504, never a hang.
 */
import type { Env } from "./env";
import { HttpError, describe } from "./http";

/** A catalog module (contract: components.schemas.Module). */
export interface Module {
  name: string;
  description: string;
  model: string;
  version: string;
}

export const DEFAULT_GATEWAY_TIMEOUT_MS = 3000;
const MAX_GATEWAY_TIMEOUT_MS = 30_000;

export async function resolveModule(env: Env, name: string, requestId: string): Promise<Module> {
  const base = gatewayBaseUrl(env);
  const timeoutMs = gatewayTimeoutMs(env);
  const url = `${base}/v1/modules/${encodeURIComponent(name)}`;
  const signal = AbortSignal.timeout(timeoutMs);

  try {
    // The deadline covers the body too: a gateway that sends headers and then stalls must not
    // hold the request open.
    return await withDeadline(signal, async () => {
      const response = await fetch(url, {
        signal,
        headers: { accept: "application/json", "x-request-id": requestId },
      });
      if (response.status === 404) {
        await response.body?.cancel();
        throw new HttpError(404, "not_found", `module "${name}" is not in the catalog`);
      }
      if (response.status !== 200) {
        await response.body?.cancel();
        throw new HttpError(502, "upstream_error", "the gateway failed to resolve the module", {
          detail: `GET ${url} answered ${response.status}`,
        });
      }
      return parseModule(await response.text(), name, url);
    });
  } catch (err) {
    if (err instanceof HttpError) throw err;
    if (signal.aborted) {
      throw new HttpError(504, "upstream_timeout", `the gateway did not answer within ${timeoutMs} ms`, {
        detail: `GET ${url}: ${describe(err)}`,
      });
    }
    throw new HttpError(502, "upstream_error", "the gateway is unreachable", {
      detail: `GET ${url}: ${describe(err)}`,
    });
  }
}

function gatewayBaseUrl(env: Env): string {
  const raw = env.GATEWAY_URL ?? "";
  let url: URL | undefined;
  try {
    url = new URL(raw);
  } catch {
    url = undefined;
  }
  if (url === undefined || (url.protocol !== "http:" && url.protocol !== "https:")) {
    throw new HttpError(502, "upstream_error", "the gateway is not configured", {
      detail: `GATEWAY_URL ${JSON.stringify(raw)} is not an http(s) URL`,
    });
  }
  return raw.replace(/\/+$/, "");
}

/** GATEWAY_TIMEOUT_MS as a whole number of milliseconds in [1, 30000]; the default otherwise. */
export function gatewayTimeoutMs(env: Env): number {
  const value = Number(env.GATEWAY_TIMEOUT_MS);
  if (env.GATEWAY_TIMEOUT_MS === undefined || env.GATEWAY_TIMEOUT_MS === "" || !Number.isInteger(value) || value < 1) {
    return DEFAULT_GATEWAY_TIMEOUT_MS;
  }
  return Math.min(value, MAX_GATEWAY_TIMEOUT_MS);
}

function parseModule(text: string, name: string, url: string): Module {
  const bad = (why: string) =>
    new HttpError(502, "upstream_error", "the gateway answered with an invalid module", {
      detail: `GET ${url}: ${why}`,
    });
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw bad("body is not JSON");
  }
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw bad("body is not an object");
  const module = body as Record<string, unknown>;
  if (module.name !== name) throw bad(`name is ${JSON.stringify(module.name)}, not ${JSON.stringify(name)}`);
  if (typeof module.model !== "string" || module.model === "") throw bad("model is missing");
  return {
    name,
    model: module.model,
    description: typeof module.description === "string" ? module.description : "",
    version: typeof module.version === "string" ? module.version : "",
  };
}

/** Runs `work` but settles as soon as `signal` aborts, whatever `work` is waiting on. */
function withDeadline<T>(signal: AbortSignal, work: () => Promise<T>): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    if (signal.aborted) return onAbort();
    signal.addEventListener("abort", onAbort, { once: true });
    work().then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}
