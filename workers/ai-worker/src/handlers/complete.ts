/**
 * POST /v1/complete: check the bearer token, validate the body, resolve the module from the
 * gateway, run its model on Workers AI.
 */
import { runModel } from "../ai";
import { authorize } from "../auth";
import { readCompletionRequest } from "../completion-request";
import { resolveModule } from "../gateway";
import { json } from "../http";
import type { Handler } from "../router";

export const complete: Handler = async (request, env, { requestId }) => {
  await authorize(request, env);
  const input = await readCompletionRequest(request);
  const module = await resolveModule(env, input.module, requestId);
  const output = await runModel(env, module.model, input.prompt);
  return json({ module: module.name, model: module.model, output });
};
