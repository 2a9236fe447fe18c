/** The bindings of the Worker. The names are fixed: wrangler.toml and the Pulumi stack set them. */
export interface Env {
  /** Base URL of the Go API gateway (plain var), e.g. "http://127.0.0.1:8080". */
  GATEWAY_URL?: string;
  /** Timeout of one gateway call in milliseconds (plain var; default 3000). */
  GATEWAY_TIMEOUT_MS?: string | number;
  /** Deadline of one Workers AI call in milliseconds (plain var; default 15000). */
  AI_TIMEOUT_MS?: string | number;
  /** Secret text: POST /v1/complete requires "Authorization: Bearer <API_TOKEN>"; unbound, it answers 503. */
  API_TOKEN?: string;
  /** The Workers AI binding. */
  AI?: AiBinding;
}

/**
 * The part of the Workers AI binding this Worker uses. Models come from the catalog at run
 * time, so the model id is a plain string rather than the typed model list.
 */
export interface AiBinding {
  run(model: string, inputs: { prompt: string }): Promise<unknown>;
}
