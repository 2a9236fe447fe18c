/**
 * Runs a model on the Workers AI binding under a deadline (AI_TIMEOUT_MS): a failure or a
 * malformed answer is a 502, no answer in time a 504.
 */
import type { Env } from "./env";
import { withDeadline } from "./gateway";
import { HttpError, describe } from "./http";

export const DEFAULT_AI_TIMEOUT_MS = 15_000;
const MAX_AI_TIMEOUT_MS = 120_000;

export async function runModel(env: Env, model: string, prompt: string): Promise<string> {
  if (env.AI === undefined) {
    throw new HttpError(502, "upstream_error", "Workers AI is not available", { detail: "no AI binding" });
  }
  const ai = env.AI;
  const timeoutMs = aiTimeoutMs(env);
  const signal = AbortSignal.timeout(timeoutMs);
  let result: unknown;
  try {
    // The binding takes no signal: the deadline settles the call, whatever the model does.
    result = await withDeadline(signal, () => ai.run(model, { prompt }));
  } catch (err) {
    if (signal.aborted) {
      throw new HttpError(504, "upstream_timeout", `Workers AI did not answer within ${timeoutMs} ms`, {
        detail: `${model}: ${describe(err)}`,
      });
    }
    throw new HttpError(502, "upstream_error", `Workers AI failed to run ${model}`, { detail: describe(err) });
  }
  const response = (result as { response?: unknown } | null)?.response;
  if (typeof response !== "string") {
    throw new HttpError(502, "upstream_error", `Workers AI returned no text for ${model}`, {
      detail: "result has no string `response`",
    });
  }
  return response;
}

/** AI_TIMEOUT_MS as a whole number of milliseconds in [1, 120000]; the default otherwise. */
export function aiTimeoutMs(env: Env): number {
  const value = Number(env.AI_TIMEOUT_MS);
  if (env.AI_TIMEOUT_MS === undefined || env.AI_TIMEOUT_MS === "" || !Number.isInteger(value) || value < 1) {
    return DEFAULT_AI_TIMEOUT_MS;
  }
  return Math.min(value, MAX_AI_TIMEOUT_MS);
}
