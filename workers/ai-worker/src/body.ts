/**
 * Message bodies, read one way: `readText` reads a request's or a response's body with a size
 * cap and strict UTF-8, the one reader of the Worker; `discardUnreadBody` drops what is left of
 * a request answered without reading it.
 */

/** The body declared or streamed more bytes than the reader's limit. */
export class BodyTooLargeError extends Error {
  constructor(readonly limit: number) {
    super(`body exceeds ${limit} bytes`);
  }
}

/** The body is not well-formed UTF-8. */
export class BodyNotUtf8Error extends Error {
  constructor() {
    super("body is not valid UTF-8");
  }
}

/**
 * The whole body as text: at most `limit` bytes, whether or not Content-Length is declared
 * (chunked bodies), decoded strictly (a malformed byte sequence is an error, never U+FFFD, so
 * what is parsed is exactly what was sent; a leading byte-order mark is dropped). Throws
 * BodyTooLargeError with the body's reader released, so that the caller either drops the rest
 * (a request: see discardUnreadBody) or cancels it (a response); BodyNotUtf8Error; or whatever
 * reading the stream threw (the peer went away, a deadline aborted it).
 */
export async function readText(message: Request | Response, limit: number): Promise<string> {
  const declared = message.headers.get("content-length");
  if (declared !== null && Number(declared) > limit) throw new BodyTooLargeError(limit);
  if (message.body === null) return "";

  const reader = message.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      reader.releaseLock();
      throw new BodyTooLargeError(limit);
    }
    chunks.push(value);
  }

  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  try {
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    throw new BodyNotUtf8Error();
  }
}

/**
 * A request body the Worker does not want must still be read before it answers: closing a
 * connection with request bytes unread makes the kernel reset it, and a client that is still
 * writing then gets EPIPE or ECONNRESET instead of the answer. Like Go's net/http, at most
 * MAX_DISCARD_BYTES more are read and dropped; a larger body is cut off (and that client may
 * see the reset).
 */
export const MAX_DISCARD_BYTES = 256 * 1024;

/**
 * Drops what is left of the body of a request that was answered without reading it all (401,
 * 404, 405, some 400s, 413). A handler that read the whole body keeps its reader, and the
 * body stays locked; one that stopped early releases it. Never throws: a client that went
 * away mid-body has nothing left to be answered.
 */
export async function discardUnreadBody(request: Request): Promise<void> {
  if (request.body === null || request.body.locked) return;
  const reader = request.body.getReader();
  try {
    for (let read = 0; read <= MAX_DISCARD_BYTES; ) {
      const { done, value } = await reader.read();
      if (done) return;
      read += value.byteLength;
    }
    await reader.cancel();
  } catch {
    // The stream errored (the client aborted): there is nothing more to read.
  }
}
