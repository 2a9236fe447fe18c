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
