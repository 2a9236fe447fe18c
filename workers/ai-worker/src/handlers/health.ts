/** GET /healthz: liveness; 200 while the Worker can serve at all. It calls nothing. */
import { json } from "../http";
import type { Handler } from "../router";

export const health: Handler = () => json({ status: "ok" });
