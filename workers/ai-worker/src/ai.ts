/** Runs a model on the Workers AI binding; any failure or malformed answer is a 502. */
import type { Env } from "./env";
import { HttpError, describe } from "./http";

export async function runModel(env: Env, model: string, prompt: string): Promise<string> {
  if (env.AI === undefined) {
    throw new HttpError(502, "upstream_error", "Workers AI is not available", { detail: "no AI binding" });
  }
  let result: unknown;
  try {
    result = await env.AI.run(model, { prompt });
  } catch (err) {
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
