// The bundle-size budget of a Worker, run from its folder (`npm run budget`): the bundle its
// stacks upload (package.json's config.bundle, by default dist/worker.js, built by `npm run
// build`) must stay within config.bundleBudgetGzipBytes, counted gzipped as Cloudflare counts
// a Worker's size. Cloudflare's limit is far above; the budget catches a dependency that drags
// a library into the bundle long before that limit does.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";

const folder = process.cwd();
const pkg = JSON.parse(readFileSync(join(folder, "package.json")));
const budget = pkg.config?.bundleBudgetGzipBytes;
if (!Number.isInteger(budget) || budget <= 0) {
  console.error(`bundle budget: ${pkg.name}'s package.json sets no config.bundleBudgetGzipBytes`);
  process.exit(1);
}
const path = pkg.config?.bundle ?? "dist/worker.js";
let bundle;
try {
  bundle = readFileSync(join(folder, path));
} catch {
  console.error(`bundle budget: no ${path} in ${pkg.name}: build it first (npm run build, or make worker)`);
  process.exit(1);
}
const gzipped = gzipSync(bundle, { level: 9 }).length;
const line = `bundle budget: ${pkg.name}'s ${path} is ${bundle.length} bytes, ${gzipped} gzipped, budget ${budget}`;
if (gzipped > budget) {
  console.error(`${line}: over by ${gzipped - budget} bytes`);
  process.exit(1);
}
console.log(line);
