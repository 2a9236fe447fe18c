// The bundle-size budget: the bundle the Worker stacks upload (dist/worker.js, built by
// `npm run build`) must stay within the budget package.json sets, counted gzipped as
// Cloudflare counts a Worker's size. Its limit is far above this; the budget catches a
// dependency that drags a library into the bundle long before that limit does.
import { readFileSync } from "node:fs";
import { gzipSync } from "node:zlib";

const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url)));
const budget = pkg.config?.bundleBudgetGzipBytes;
if (!Number.isInteger(budget) || budget <= 0) {
  console.error("bundle budget: package.json sets no config.bundleBudgetGzipBytes");
  process.exit(1);
}
const bundle = readFileSync(new URL("../dist/worker.js", import.meta.url));
const gzipped = gzipSync(bundle, { level: 9 }).length;
const line = `bundle budget: dist/worker.js is ${bundle.length} bytes, ${gzipped} gzipped, budget ${budget}`;
if (gzipped > budget) {
  console.error(`${line}: over by ${gzipped - budget} bytes`);
  process.exit(1);
}
console.log(line);
