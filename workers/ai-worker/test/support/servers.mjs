// Loopback servers the Worker talks to in tests: the real Go gateway, and misbehaving gateways
// (down, silent, broken) that the real one cannot be made to imitate.
import { spawn, execFile } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

export const REPO_ROOT = fileURLToPath(new URL("../../../../", import.meta.url));
export const GATEWAY_DIR = join(REPO_ROOT, "apps", "api-gateway");
export const CATALOG_PATH = join(GATEWAY_DIR, "catalog.json");

/** A loopback port nothing listens on: connecting to it is refused at once. */
export async function closedPort() {
  const server = net.createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address();
  server.close();
  await once(server, "close");
  return port;
}

/** A TCP server that accepts connections and never answers a byte. */
export async function startSilentServer() {
  const sockets = new Set();
  let accepted = 0;
  const server = net.createServer((socket) => {
    accepted += 1;
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => {});
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    /** How many connections it accepted: proves the Worker really called it. */
    accepted: () => accepted,
    close() {
      for (const socket of sockets) socket.destroy();
      server.close();
    },
  };
}

/**
 * An HTTP server whose answer to GET /v1/modules/{name} is chosen by `behaviours[name]`:
 * a function (req, res) => void. Unknown names get a contract 404.
 */
export async function startFakeGateway(behaviours) {
  const sockets = new Set();
  const seen = [];
  const server = http.createServer((req, res) => {
    seen.push(req.url);
    const name = decodeURIComponent(req.url.replace(/^\/v1\/modules\//, ""));
    const behaviour = behaviours[name];
    if (behaviour) return behaviour(req, res);
    res.writeHead(404, { "content-type": "application/json" });
    res.end(JSON.stringify({ error: { code: "not_found", message: `no module ${name}` } }));
  });
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    /** The request targets it was sent, in order. */
    requests: () => [...seen],
    close() {
      for (const socket of sockets) socket.destroy();
      server.close();
    },
  };
}

/**
 * Builds the real gateway (apps/api-gateway) once per test run, or uses GATEWAY_BIN if set.
 * Returns the path of the binary and a cleanup function.
 */
export async function buildGateway() {
  if (process.env.GATEWAY_BIN) return { bin: process.env.GATEWAY_BIN, cleanup() {} };
  if (!existsSync(join(GATEWAY_DIR, "go.mod"))) {
    throw new Error(`the real gateway is needed: no Go module at ${GATEWAY_DIR}`);
  }
  const dir = mkdtempSync(join(tmpdir(), "ai-worker-gateway-"));
  const bin = join(dir, "api-gateway");
  const go = process.env.GO ?? (existsSync("/usr/local/go/bin/go") ? "/usr/local/go/bin/go" : "go");
  await promisify(execFile)(go, ["build", "-o", bin, "./"], {
    cwd: GATEWAY_DIR,
    env: { ...process.env, CGO_ENABLED: "0" },
  });
  return { bin, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * Starts the gateway binary on a loopback port with the example catalog and waits until
 * /readyz answers 200. `workerUrl` and `workerToken` configure its forwarding to the Worker.
 */
export async function startGateway(bin, { port, workerUrl, workerToken } = {}) {
  port ??= await closedPort();
  const output = [];
  const child = spawn(bin, [], {
    env: {
      PATH: process.env.PATH,
      PORT: String(port),
      CATALOG_PATH,
      ...(workerUrl && { WORKER_URL: workerUrl }),
      ...(workerToken && { WORKER_API_TOKEN: workerToken }),
      SHUTDOWN_DRAIN: "0s",
      SHUTDOWN_TIMEOUT: "2s",
      WORKER_TIMEOUT: "2s",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stdout.on("data", (chunk) => output.push(String(chunk)));
  child.stderr.on("data", (chunk) => output.push(String(chunk)));
  const url = `http://127.0.0.1:${port}`;

  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null) {
      throw new Error(`gateway exited with ${child.exitCode}:\n${output.join("")}`);
    }
    try {
      const response = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(500) });
      if (response.status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`gateway did not become ready on ${url}:\n${output.join("")}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }

  return {
    url,
    /** The gateway's JSON log lines that carry `requestId`. */
    logsFor(requestId) {
      return output
        .join("")
        .split("\n")
        .filter((line) => line.includes(requestId))
        .map((line) => JSON.parse(line))
        .filter((entry) => entry.request_id === requestId);
    },
    async close() {
      if (child.exitCode !== null) return;
      child.kill("SIGTERM");
      const killer = setTimeout(() => child.kill("SIGKILL"), 5_000);
      await once(child, "exit");
      clearTimeout(killer);
    },
  };
}
