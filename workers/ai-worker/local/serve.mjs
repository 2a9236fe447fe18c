// Serves the built Worker (dist/worker.js) in the local Workers runtime with the stand-in AI
// binding, until SIGINT/SIGTERM. Used by `npm run dev` and tools/dev/run.sh; wrangler dev
// cannot serve the AI binding without a Cloudflare account.
//
// Environment: HOST (127.0.0.1), PORT (8787), and the Worker's bindings GATEWAY_URL
// (http://127.0.0.1:8080), GATEWAY_TIMEOUT_MS (3000), AI_TIMEOUT_MS (1500) and API_TOKEN (unset: every completion
// is refused with 503).
import { existsSync } from "node:fs";
import { BUNDLE, startWorker } from "./miniflare.mjs";

if (!existsSync(BUNDLE)) {
  console.error(`ai-worker: ${BUNDLE} is missing; run "npm run build" first`);
  process.exit(1);
}

const vars = {
  GATEWAY_URL: process.env.GATEWAY_URL ?? "http://127.0.0.1:8080",
  GATEWAY_TIMEOUT_MS: process.env.GATEWAY_TIMEOUT_MS ?? "3000",
  AI_TIMEOUT_MS: process.env.AI_TIMEOUT_MS ?? "1500",
  ...(process.env.API_TOKEN !== undefined && { API_TOKEN: process.env.API_TOKEN }),
};
const worker = await startWorker({
  vars,
  host: process.env.HOST ?? "127.0.0.1",
  port: Number(process.env.PORT ?? 8787),
  onLine: (line) => console.log(line),
});
console.error(`ai-worker: serving ${BUNDLE} on ${worker.url} (GATEWAY_URL=${vars.GATEWAY_URL})`);

let stopping = false;
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, async () => {
    if (stopping) return;
    stopping = true;
    await worker.close();
    process.exit(0);
  });
}
