// Runs the bundled Worker (dist/worker.js) in the local Workers runtime (workerd via miniflare),
// with the stand-in AI binding, on a loopback port. Used by the tests and by `npm run dev`.
import { fileURLToPath } from "node:url";
import { Miniflare } from "miniflare";

export const BUNDLE = fileURLToPath(new URL("../dist/worker.js", import.meta.url));
export const AI_STAND_IN = fileURLToPath(new URL("./ai-stand-in.js", import.meta.url));

/** The compatibility settings of wrangler.toml (and of the Pulumi Worker stack); a test keeps them equal. */
export const COMPATIBILITY_DATE = "2025-09-01";
export const COMPATIBILITY_FLAGS = [];

/**
 * Starts the Worker. `vars` become its text bindings (GATEWAY_URL, GATEWAY_TIMEOUT_MS,
 * API_TOKEN); port 0 picks a free one. Every line the runtime prints is kept in `logs` and
 * passed to `onLine`. Returns the Worker's loopback origin, its logs, and `close`.
 */
export async function startWorker({ vars = {}, host = "127.0.0.1", port = 0, onLine = () => {} } = {}) {
  const logs = [];
  const keep = (line) => {
    logs.push(line);
    onLine(line);
  };
  const mf = new Miniflare({
    host,
    port,
    handleRuntimeStdio(stdout, stderr) {
      forEachLine(stdout, keep);
      forEachLine(stderr, keep);
    },
    workers: [
      {
        name: "ai-worker",
        modules: true,
        scriptPath: BUNDLE,
        compatibilityDate: COMPATIBILITY_DATE,
        compatibilityFlags: COMPATIBILITY_FLAGS,
        bindings: vars,
        wrappedBindings: { AI: { scriptName: "ai-stand-in" } },
      },
      {
        name: "ai-stand-in",
        modules: true,
        scriptPath: AI_STAND_IN,
      },
    ],
  });
  const url = await mf.ready;
  return {
    url: url.origin,
    logs,
    /** The parsed log lines that mention `requestId`. */
    logsFor(requestId) {
      return logs.filter((line) => line.includes(requestId)).map((line) => JSON.parse(line));
    },
    close: () => mf.dispose(),
  };
}

function forEachLine(stream, callback) {
  let pending = "";
  stream.setEncoding("utf8");
  stream.on("data", (chunk) => {
    pending += chunk;
    const lines = pending.split("\n");
    pending = lines.pop();
    for (const line of lines) if (line.trim() !== "") callback(line);
  });
}
