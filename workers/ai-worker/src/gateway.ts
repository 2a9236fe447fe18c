/**
 * Client of the Go API gateway: resolves a catalog module with a bounded timeout and turns every
 * way the call can fail into a clear 404, 502 or 504, never a hang.
 */
import { BodyNotUtf8Error, BodyTooLargeError, readText } from "./body";
import type { Module } from "./contract";
import type { Env } from "./env";
import { HttpError, describe } from "./http";
import { bounded, redactUrl } from "./redact";

export const DEFAULT_GATEWAY_TIMEOUT_MS = 3000;
const MAX_GATEWAY_TIMEOUT_MS = 30_000;
/** A module is a few hundred bytes; an answer past this is not one. */
export const MAX_GATEWAY_ANSWER_BYTES = 64 * 1024;

export async function resolveModule(env: Env, name: string, requestId: string): Promise<Module> {
  const base = gatewayBaseUrl(env);
  const timeoutMs = gatewayTimeoutMs(env);
  const url = `${base}/v1/modules/${encodeURIComponent(name)}`;
  const logged = `GET ${redactUrl(url)}`;
  const signal = AbortSignal.timeout(timeoutMs);

  try {
    // The deadline covers the body too: a gateway that sends headers and then stalls must not
    // hold the request open.
    return await withDeadline(signal, async () => {
      const response = await fetch(url, {
        signal,
        // A redirect is not the gateway's answer (and following it would take the request
        // somewhere else): it is a 502 like any other unexpected status.
        redirect: "manual",
        headers: { accept: "application/json", "x-request-id": requestId },
      });
      if (response.status === 404) {
        await response.body?.cancel();
        throw new HttpError(404, "not_found", `module "${name}" is not in the catalog`);
      }
      if (response.status !== 200) {
        await response.body?.cancel();
        throw new HttpError(502, "upstream_error", "the gateway failed to resolve the module", {
          detail: `${logged} answered ${response.status}`,
        });
      }
      return parseModule(await readCapped(response, MAX_GATEWAY_ANSWER_BYTES, logged), name, logged);
    });
  } catch (err) {
    if (err instanceof HttpError) throw err;
    if (signal.aborted) {
      throw new HttpError(504, "upstream_timeout", `the gateway did not answer within ${timeoutMs} ms`, {
        detail: `${logged}: ${describe(err)}`,
      });
    }
    throw new HttpError(502, "upstream_error", "the gateway is unreachable", {
      detail: `${logged}: ${describe(err)}`,
    });
  }
}

/** The body as text (readText), refusing (502) one larger than `limit` or not UTF-8. */
async function readCapped(response: Response, limit: number, logged: string): Promise<string> {
  const invalid = (why: string) =>
    new HttpError(502, "upstream_error", "the gateway answered with an invalid module", {
      detail: `${logged}: ${why}`,
    });
  try {
    return await readText(response, limit);
  } catch (err) {
    if (err instanceof BodyTooLargeError) {
      await response.body?.cancel();
      throw invalid(`answer larger than ${limit} bytes`);
    }
    if (err instanceof BodyNotUtf8Error) throw invalid("answer is not valid UTF-8");
    throw err; // a failed or aborted read: unreachable or timed out, as the caller tells
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
  const notConfigured = (why: string) =>
    new HttpError(502, "upstream_error", "the gateway is not configured", {
      detail: `GATEWAY_URL ${JSON.stringify(redactUrl(raw))} ${why}`,
    });
  if (url === undefined || (url.protocol !== "http:" && url.protocol !== "https:")) {
    throw notConfigured("is not an http(s) URL");
  }
  if (url.username !== "" || url.password !== "") throw notConfigured("must not carry credentials");
  if (url.search !== "" || url.hash !== "") throw notConfigured("must not have a query or fragment");
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

function parseModule(text: string, name: string, logged: string): Module {
  const bad = (why: string) =>
    new HttpError(502, "upstream_error", "the gateway answered with an invalid module", {
      detail: `${logged}: ${why}`,
    });
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw bad("body is not JSON");
  }
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw bad("body is not an object");
  const module = body as Record<string, unknown>;
  if (module.name !== name) throw bad(`name is ${bounded(JSON.stringify(module.name) ?? "missing")}, not ${JSON.stringify(name)}`);
  if (typeof module.model !== "string" || module.model === "") throw bad("model is missing");
  return {
    name,
    model: module.model,
    description: typeof module.description === "string" ? module.description : "",
    version: typeof module.version === "string" ? module.version : "",
  };
}

/** Runs `work` but settles as soon as `signal` aborts, whatever `work` is waiting on. */
export function withDeadline<T>(signal: AbortSignal, work: () => Promise<T>): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    if (signal.aborted) return onAbort();
    signal.addEventListener("abort", onAbort, { once: true });
    work().then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}
