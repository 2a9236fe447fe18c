// Runs the bundled Worker (dist/worker.js) in the local Workers runtime (workerd via miniflare),
// with the stand-in AI binding, on a loopback port. Used by the tests and by `npm run dev`.
import { fileURLToPath } from "node:url";
import { Miniflare } from "miniflare";
import { unstable_readConfig } from "wrangler";

export const BUNDLE = fileURLToPath(new URL("../dist/worker.js", import.meta.url));
export const AI_STAND_IN = fileURLToPath(new URL("./ai-stand-in.js", import.meta.url));

export const WRANGLER_TOML = fileURLToPath(new URL("../wrangler.toml", import.meta.url));

/** The compatibility settings, read from wrangler.toml by wrangler itself (the Pulumi stacks read them there too). */
const wranglerConfig = unstable_readConfig({ config: WRANGLER_TOML });
export const COMPATIBILITY_DATE = wranglerConfig.compatibility_date;
export const COMPATIBILITY_FLAGS = wranglerConfig.compatibility_flags;

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
