/** Reads and strictly validates the body of POST /v1/complete (contract: CompletionRequest). */
import { type CompletionRequest, MAX_PROMPT_CHARS, MIN_PROMPT_CHARS, MODULE_NAME } from "./contract";
import { BodyNotUtf8Error, BodyTooLargeError, readText } from "./body";
import { ClientAbortedError, HttpError } from "./http";

/**
 * The longest valid prompt, 8000 characters outside the Basic Multilingual Plane each
 * \u-escaped as a surrogate pair (12 bytes, as Python's json.dumps writes them by default),
 * is 96 000 bytes of JSON: the limit must fit it.
 */
export const MAX_BODY_BYTES = 128 * 1024;
const FIELDS = new Set(["module", "prompt"]);

export async function readCompletionRequest(request: Request): Promise<CompletionRequest> {
  const mediaType = (request.headers.get("content-type") ?? "").split(";")[0]!.trim().toLowerCase();
  if (mediaType !== "application/json") {
    throw new HttpError(415, "unsupported_media_type", "Content-Type must be application/json");
  }
  const text = await readBodyText(request, MAX_BODY_BYTES);
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw badRequest("request body is not valid JSON");
  }
  // JSON.parse keeps the last of duplicate keys; the contract's closed object has each once.
  const duplicate = firstDuplicateKey(text);
  if (duplicate !== undefined) throw badRequest(`duplicate field "${duplicate}"`);
  return parseCompletionRequest(body);
}

export function parseCompletionRequest(body: unknown): CompletionRequest {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw badRequest("request body must be a JSON object");
  }
  const fields = body as Record<string, unknown>;
  const problems: string[] = [];
  for (const key of Object.keys(fields)) {
    if (!FIELDS.has(key)) problems.push(`unknown field "${key}"`);
  }

  const { module, prompt } = fields;
  if (module === undefined) problems.push("module is required");
  else if (typeof module !== "string") problems.push("module must be a string");
  else if (!MODULE_NAME.test(module)) problems.push(`module must match ${MODULE_NAME.source}`);

  if (prompt === undefined) problems.push("prompt is required");
  else if (typeof prompt !== "string") problems.push("prompt must be a string");
  else {
    // JSON Schema counts code points, not UTF-16 units.
    const length = [...prompt].length;
    if (length < MIN_PROMPT_CHARS) problems.push("prompt must not be empty");
    if (length > MAX_PROMPT_CHARS) problems.push(`prompt must be at most ${MAX_PROMPT_CHARS} characters`);
  }

  if (problems.length > 0) throw badRequest(problems.join("; "));
  return { module: module as string, prompt: prompt as string };
}

/**
 * The first key that appears twice in one object of `text`, which must be valid JSON. A small
 * scanner: it tracks string boundaries and nesting, and reads each key as JSON.parse would.
 */
export function firstDuplicateKey(text: string): string | undefined {
  const keysOfOpenObjects: (Set<string> | null)[] = [];
  for (let i = 0; i < text.length; i += 1) {
    const c = text[i];
    if (c === "{") keysOfOpenObjects.push(new Set());
    else if (c === "[") keysOfOpenObjects.push(null);
    else if (c === "}" || c === "]") keysOfOpenObjects.pop();
    else if (c === '"') {
      let end = i + 1;
      while (text[end] !== '"') end += text[end] === "\\" ? 2 : 1;
      const keys = keysOfOpenObjects.at(-1);
      let next = end + 1;
      while (/\s/.test(text[next] ?? "")) next += 1;
      if (keys && text[next] === ":") {
        const key = JSON.parse(text.slice(i, end + 1)) as string;
        if (keys.has(key)) return key;
        keys.add(key);
      }
      i = end;
    }
  }
  return undefined;
}

/** The body as text (readText), each way it can fail turned into the Worker's answer. */
async function readBodyText(request: Request, limit: number): Promise<string> {
  try {
    return await readText(request, limit);
  } catch (err) {
    // Too large: the reader is released, and the Worker's entry drops the rest before answering.
    if (err instanceof BodyTooLargeError) throw tooLarge(limit);
    if (err instanceof BodyNotUtf8Error) throw badRequest("request body is not valid UTF-8");
    throw new ClientAbortedError(err);
  }
}

function badRequest(message: string): HttpError {
  return new HttpError(400, "bad_request", message);
}

function tooLarge(limit: number): HttpError {
  return new HttpError(413, "payload_too_large", `request body exceeds ${limit} bytes`);
}
